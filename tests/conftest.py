"""Session-wide test settings: tiny models on a shared 2-core CPU run far faster single-threaded
(torch's thread hand-offs dominate tiny matmuls), so tests use one torch thread."""
import pytest
import torch

torch.set_num_threads(1)


def registry_restored():
    from lavida_bench.tasks import TASKS

    with TASKS.restored():
        yield


# Tests register fake tasks (tests/harness/fake.py, tests/reliability/fakes.py); their
# registrations are undone when each test ends, so no test sees another's. Module-scoped fixtures
# that register fakes are set up before any function-scoped fixture, so modules get the same.
task_registry_restored = pytest.fixture(autouse=True)(registry_restored)
task_registry_restored_per_module = pytest.fixture(autouse=True, scope="module")(registry_restored)
