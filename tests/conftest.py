"""Session-wide test settings: tiny models on a shared 2-core CPU run far faster single-threaded
(torch's thread hand-offs dominate tiny matmuls), so tests use one torch thread."""
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def task_registry_restored():
    """Tests register fake tasks (tests/harness/fake.py, tests/reliability/fakes.py); each test's
    registrations are undone when it ends, so no test sees another's."""
    from lavida_bench.tasks import TASKS

    with TASKS.restored():
        yield
