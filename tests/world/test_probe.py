"""tools/probe_world.py: the image path carries information (the background question is learned)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "probe_world.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("probe_world", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_background_question_is_learned_from_the_image() -> None:
    """Measured (seed 0, the default recipe): held-out first-token accuracy 0.688 at step 100 and
    0.688-0.719 at step 200 (every "dark grey" right; "white" and "light grey" not yet told
    apart), where the majority answer scores 24/64 = 0.375; only the image tells them apart."""
    tool = load_tool()
    records = tool.probe(tool.parse(["--question", "background", "--steps", "200", "--every", "100"]),
                         log=lambda _: None)
    assert [r["step"] for r in records] == [100, 200]
    assert records[-1]["accuracy"] >= 0.6
    assert records[-1]["loss"] < records[0]["loss"]


def test_answer_words_are_learned_once_padding_waits() -> None:
    """"Say the word red." -> "red". Measured (seed 0): with the default `padding_from` the held-out
    first-token accuracy is 1.0 at step 100 and 150; with the padding a target from step 1 (the
    release's recipe, `--padding-from 1`) it was 0.109 at step 100 and 0.203 at step 300 (8 heads).
    A network trained from scratch on 14 EOS targets per answer learns EOS, not the answer."""
    tool = load_tool()
    records = tool.probe(tool.parse(["--question", "copy", "--steps", "150", "--every", "150"]), log=lambda _: None)
    assert records[-1]["accuracy"] >= 0.9


def test_bad_arguments_exit_2(capsys) -> None:
    assert load_tool().main(["--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
