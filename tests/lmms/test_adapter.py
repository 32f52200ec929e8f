"""The lmms-eval model adapter on fake lmms-eval requests and a fake pipeline (no weights)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lmms_eval.api.instance import Instance
from PIL import Image

from lavida_bench import lmms_adapter
from lavida_bench.api import Request, Result
from lavida_bench.lmms_adapter import LavidaO, parse_gen_kwargs, truncate_at


class FakePipeline:
    """Answers `<prompt>|<n images>|<max_new_tokens>` and records each batch's request ids."""

    def __init__(self, answer: str | None = None):
        self.batches: list[list[Request]] = []
        self.answer = answer

    def understand(self, requests: list[Request]) -> list[Result]:
        self.batches.append(list(requests))
        return [Result(text=self.answer if self.answer is not None
                       else f"{r.prompt}|{len(r.images)}|{r.options.max_new_tokens}") for r in requests]


def image(size: tuple[int, int] = (8, 6), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size)


def instance(context: str, gen_kwargs: dict, doc_id: int, task: str = "t", split: str = "test",
             to_visual=lambda doc: [doc["image"]]) -> Instance:
    return Instance(request_type="generate_until", arguments=(context, gen_kwargs, to_visual, doc_id, task, split),
                    idx=0, metadata={"task": task, "doc_id": doc_id, "repeats": 1})


def adapter(pipeline: FakePipeline, docs: list[dict], batch_size: int = 2, task: str = "t") -> LavidaO:
    model = LavidaO.from_pipeline(pipeline, batch_size=batch_size)
    model.task_dict = {task: {"test": docs}}
    return model


def test_manifest_points_lmms_eval_at_the_adapter_class():
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()  # reads pyproject's `lmms_eval.models` entry point
    assert registry.get_model_class("lavida_o") is LavidaO
    assert LavidaO.is_simple


def test_generate_until_batches_by_settings_and_keeps_request_order():
    docs = [{"image": image()}, {"image": image((4, 4), "L")}, {"image": image()}]
    pipe = FakePipeline()
    model = adapter(pipe, docs, batch_size=2)
    short, long_ = {"max_new_tokens": 16}, {"max_new_tokens": 32, "until": ["|"]}
    requests = [instance("q0", short, 0), instance("q1", long_, 1), instance("q2", dict(short), 2)]
    answers = model.generate_until(requests)
    # q1 is cut at its stop string "|"; q0 and q2 keep the fake's full echo
    assert answers == ["q0|1|16", "q1", "q2|1|16"]
    # equal settings share a batch (q0, q2), different max_new_tokens never do
    assert [[r.prompt for r in b] for b in pipe.batches] == [["q0", "q2"], ["q1"]]
    first = pipe.batches[0][0]
    assert first.capability == "understand" and first.id == "t/test/0"
    assert first.options.temperature == 0.0  # the release forces greedy decoding
    assert pipe.batches[1][0].images[0].mode == "RGB"  # the grey image was converted
    assert requests[1].args[1] == {"max_new_tokens": 32, "until": ["|"]}  # the task's dict is untouched


def test_batch_size_splits_a_group():
    docs = [{"image": image()} for _ in range(5)]
    pipe = FakePipeline(answer="x")
    model = adapter(pipe, docs, batch_size=2)
    assert model.generate_until([instance(f"q{i}", {"max_new_tokens": 8}, i) for i in range(5)]) == ["x"] * 5
    assert [len(b) for b in pipe.batches] == [2, 2, 1]


def test_default_max_new_tokens_is_the_release_default():
    pipe = FakePipeline()
    model = adapter(pipe, [{"image": image()}])
    assert model.generate_until([instance("q", {}, 0)]) == ["q|1|256"]


def test_seed_depends_on_the_document_not_the_batch():
    docs = [{"image": image()} for _ in range(3)]
    seeds = []
    for batch_size in (1, 3):
        pipe = FakePipeline(answer="")
        adapter(pipe, docs, batch_size).generate_until([instance("q", {}, i) for i in range(3)])
        seeds.append([r.seed for b in pipe.batches for r in b])
    assert seeds[0] == seeds[1] and len(set(seeds[0])) == 3


def test_text_only_documents_send_no_images():
    pipe = FakePipeline()
    model = adapter(pipe, [{"text": "no picture"}])
    assert model.generate_until([instance("q", {}, 0, to_visual=lambda doc: [])]) == ["q|0|256"]


@pytest.mark.parametrize(("text", "until", "expected"), [
    ("42\n\nmore", ["\n\n"], "42"),
    ("  yes. no", [".", " no"], "yes"),
    ("abc", [], "abc"),
    ("abc", [""], "abc"),  # an empty stop string never cuts
])
def test_truncate_at(text, until, expected):
    assert truncate_at(text, until) == expected


def test_gen_kwargs_string_until_and_ignored_sampling_options(caplog):
    with caplog.at_level(logging.WARNING, logger=lmms_adapter.__name__):
        settings = parse_gen_kwargs({"until": "END", "temperature": 0.7, "do_sample": False, "max_new_tokens": "64",
                                     "prefix_lm": True}, 256, "task x")
    assert settings.until == ("END",) and settings.max_new_tokens == 64
    assert "temperature=0.7 ignored" in caplog.text


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_new_tokens": 200}, "multiple of 128"),
    ({"max_new_tokens": 0}, "positive integer"),
    ({"until": 3}, "'until' must be"),
    ({"block_length": 16}, "unsupported generation_kwargs ['block_length']"),
    ({"prefix_lm": False}, "only prefix-LM decoding"),
])
def test_bad_gen_kwargs_are_named(kwargs, message):
    with pytest.raises(ValueError, match="task x") as err:
        parse_gen_kwargs(kwargs, 256, "task x")
    assert message in str(err.value)


def test_max_new_tokens_above_128_must_fill_whole_blocks():
    assert parse_gen_kwargs({"max_new_tokens": 384}, 16, "w").max_new_tokens == 384
    with pytest.raises(ValueError, match="multiple of 128"):
        LavidaO.from_pipeline(FakePipeline(), max_new_tokens=130)


def test_interleaved_image_markers_are_refused():
    model = adapter(FakePipeline(), [{"image": image()}])
    with pytest.raises(ValueError, match="doc 0: the prompt already holds '<image>'"):
        model.generate_until([instance("<image>\nq", {}, 0)])


def test_non_image_visuals_are_refused():
    model = adapter(FakePipeline(), [{"video": "clip.mp4"}])
    with pytest.raises(TypeError, match="visual 0 is a str"):
        model.generate_until([instance("q", {}, 0, to_visual=lambda doc: [doc["video"]])])


def test_loglikelihood_and_multi_round_are_not_implemented():
    model = LavidaO.from_pipeline(FakePipeline())
    with pytest.raises(NotImplementedError, match="masked-diffusion"):
        model.loglikelihood([])
    with pytest.raises(NotImplementedError, match="multi-round"):
        model.generate_until_multi_round([])


def test_missing_local_checkpoint_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "LaViDa-O-v1.0"
    with pytest.raises(FileNotFoundError, match="is not a local folder. Nothing is downloaded"):
        LavidaO.create_from_arg_string(f"pretrained={missing}", {"batch_size": 1, "device": None})
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        LavidaO(pretrained="jacklishufan/LaViDa-O-v1.0")  # a hub id is not a folder
    with pytest.raises(ValueError, match="pretrained=DIR is required"):
        LavidaO()


def test_folder_without_config_is_a_checkpoint_error(tmp_path: Path):
    from lavida_bench.api import CheckpointError

    with pytest.raises(CheckpointError, match="config.json"):
        LavidaO(pretrained=str(tmp_path), device="cpu")


@pytest.mark.parametrize(("args", "message"), [
    ("trust_remote_code=True", "unknown model_args ['trust_remote_code']"),
    ("dtype=int8", "dtype='int8'"),
    ("device=tpu", "device='tpu'"),
    ("batch_size=two", "batch_size: expected a positive integer"),
])
def test_bad_model_args_are_named(tmp_path: Path, args: str, message: str):
    with pytest.raises((TypeError, ValueError)) as err:
        LavidaO.create_from_arg_string(f"pretrained={tmp_path},{args}")
    assert message in str(err.value)
