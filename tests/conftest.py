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


@pytest.fixture(autouse=True, scope="module")
def task_registry_restored_per_module():
    """The same for module-scoped fixtures that register fakes (they are set up before any
    function-scoped fixture, so the one above cannot see them)."""
    from lavida_bench.tasks import TASKS

    with TASKS.restored():
        yield
