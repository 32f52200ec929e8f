"""docs/extending.md, followed to the letter: its code blocks become `my_benchmarks.py` and
`data/arithmetic/items.jsonl`, its commands run as written, and their output is what it says."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from lavida_bench.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "extending.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_extending_doc_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "my_benchmarks.py").write_text("".join(b for b in blocks("python") if b.startswith("# my_benchmarks.py")))
    [items] = blocks("json")
    (tmp_path / "data" / "arithmetic").mkdir(parents=True)
    (tmp_path / "data" / "arithmetic" / "items.jsonl").write_text(items)
    TASKS.get("dpg_bench").make_fixture(tmp_path / "data" / "dpg_bench", seed=0)  # "any DPG-Bench folder"
    [commands] = blocks("bash")
    outputs = []
    for line in commands.strip().splitlines():
        argv = shlex.split(line)
        assert argv[:2] == ["python", "my_benchmarks.py"], line
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, (line, proc.stdout[-2000:], proc.stderr[-3000:])
        outputs.append(proc.stdout)
    arithmetic = next(l.split() for l in outputs[1].splitlines() if l.startswith("arithmetic"))
    assert arithmetic[:6] == ["arithmetic", "plain", "acc", "0-1", "higher", "1"]
    assert arithmetic[-4:] == ["3", "(min", "30)", "0"]
    assert (tmp_path / "runs" / "arithmetic" / "report.md").is_file()
    dpg = next(l.split() for l in outputs[2].splitlines() if l.startswith("dpg_bench"))
    assert dpg[2:6] == ["overall", "0-100", "higher", "100"], dpg
