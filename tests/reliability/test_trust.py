"""No remote code, no hub: no `trust_remote_code` anywhere in the code base, every Hugging Face
`from_pretrained` reads a local folder only, and no weight loader unpickles."""
from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("lavida_bench", "model", "tasks", "reports", "scripts")
UNSAFE_LOADERS = {("torch", "load"), ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler")}


def python_files() -> list[Path]:
    files = [p for d in CODE_DIRS if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20, "the scan must see the code base"
    return sorted(files)


def code_uses(path: Path, name: str) -> list[int]:
    """Lines where `name` is used as code: an identifier (keyword argument, variable, attribute)
    or a string that is exactly the name (a `**{"name": True}` key). Prose that mentions it in
    a message or comment is not a use."""
    lines = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        identifier = tok.type == tokenize.NAME and tok.string == name
        if identifier or (tok.type == tokenize.STRING and tok.string.strip("'\"rbuf") == name):
            lines.append(tok.start[0])
    return lines


def calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.Call)]


def test_no_trust_remote_code_anywhere():
    uses = {str(p.relative_to(ROOT)): code_uses(p, "trust_remote_code") for p in python_files()}
    assert {p: lines for p, lines in uses.items() if lines} == {}


def test_the_scanner_sees_a_use(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('m = f(x, trust_remote_code=True)\n'
                     'kw = {"trust_remote_code": True}\n'
                     'msg = "no trust_remote_code"\n')
    assert code_uses(probe, "trust_remote_code") == [1, 2]


def test_every_from_pretrained_is_local_only():
    offenders = []
    for path in python_files():
        for call in calls(path):
            if isinstance(call.func, ast.Attribute) and call.func.attr == "from_pretrained":
                local = [k for k in call.keywords if k.arg == "local_files_only"]
                if not (local and isinstance(local[0].value, ast.Constant) and local[0].value.value is True):
                    offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert offenders == []


def test_no_pickle_loaders_in_the_code_base():
    offenders = []
    for path in python_files():
        for call in calls(path):
            f = call.func
            named = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            if named and (f.value.id, f.attr) in UNSAFE_LOADERS:
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: {f.value.id}.{f.attr}")
            if isinstance(f, ast.Attribute) and f.attr == "load" and any(
                    k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in call.keywords):
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: allow_pickle=True")
    assert offenders == []
