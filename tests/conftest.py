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


@pytest.fixture
def captured_logits_fn(monkeypatch) -> dict:
    """After a `TextDecoder.decode` call, `["fn"]` is the logits function it handed to the text
    sampler; the sampler is not run (every answer comes back as mask tokens)."""
    import lavida_bench.model.text_decoder as text_decoder
    from lavida_bench.model.sampling.text import SamplerTrace

    captured: dict = {}

    def capture(logits_fn, generators, gen_len, options, **kwargs):
        captured["fn"] = logits_fn
        return torch.full((len(generators), gen_len), options.mask_id), SamplerTrace()

    monkeypatch.setattr(text_decoder, "sample_text", capture)
    return captured
