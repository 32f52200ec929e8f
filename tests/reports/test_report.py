"""write_report end to end: files, sections, plots, gallery drawing, banner, and the HTML page in
headless Chromium (no console errors, every image loaded, a non-blank screenshot)."""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from lavida_bench.reports import write_report
from lavida_bench.reports.gallery import PRED, TRUTH, grounding_panels
from PIL import Image

from tests.reports.builder import write_run
from tests.reports.golden import golden_samples, write_golden

BANNER_RGB = (253, 226, 226)  # .banner background in reports/html.py


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_golden(tmp_path_factory.mktemp("report") / "run", standin=True)
    write_report(run)
    return run


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_report_files_tables_and_plots(report: Path):
    tables = report / "report" / "tables"
    for key in ("geneval", "dpg_bench", "fid30k", "imgedit", "refcoco", "mmmu", "chartqa", "cost_geneval", "speed"):
        for ext in ("md", "csv", "tex", "json"):
            assert (tables / f"{key}.{ext}").is_file(), f"{key}.{ext}"
    plots = report / "report" / "plots"
    for key in ("quality_vs_steps", "quality_vs_time", "planning_gains", "categories_geneval"):
        assert Image.open(plots / f"{key}.png").size[0] > 100
        assert (plots / f"{key}.svg").read_text().lstrip().startswith("<?xml")
    all_tables = json.loads((report / "report" / "tables.json").read_text())
    assert [t["key"] for t in all_tables][-2:] == ["cost_geneval", "speed"]


def test_markdown_and_html_sections(report: Path):
    md = (report / "report.md").read_text()
    for heading in ("### GenEval", "### DPG-Bench", "### FID-30k", "### ImgEdit", "### RefCOCO", "### MMMU",
                    "### ChartQA", "## What planning and reflection buy and cost", "### Speed (speed suite)",
                    "## Plots", "## Gallery"):
        assert heading in md
    assert "**Not comparable with the paper's numbers:** geneval: stand-in detector (shapes world only)" in md
    page = (report / "report.html").read_text()
    for section in ("trust", "benchmarks", "planning", "speed", "plots", "gallery", "manifest"):
        assert f"id='{section}'" in page
    assert "round 1: incorrect" in page and "the cat is missing" in page  # reflection rounds + verdicts
    assert "planned boxes in blue" in page
    assert "src='file:" not in page and "src='/" not in page  # images are inlined, nothing external
    assert page.count("<img ") == len(re.findall(r"<img src='data:image/png;base64,", page)) >= 10


def test_report_never_changes_the_run_records(tmp_path: Path):
    run = write_run(tmp_path / "run", {k: v for k, v in golden_samples().items() if k in ("chartqa", "refcoco")})
    before = tree_hash(run / "records"), (run / "metrics.json").read_bytes(), (run / "manifest.json").read_bytes()
    write_report(run, tmp_path / "out")
    assert (tree_hash(run / "records"), (run / "metrics.json").read_bytes(),
            (run / "manifest.json").read_bytes()) == before
    assert (tmp_path / "out" / "report.html").is_file() and not (run / "report.html").exists()


def test_banner_only_when_the_trust_facts_say_so(tmp_path: Path):
    """The banner shows the trust facts scoring stored; a comparable run has none."""
    run = write_run(tmp_path / "ok", {k: v for k, v in golden_samples().items() if k in ("chartqa",)})
    write_report(run)
    assert "Not comparable" not in (run / "report.md").read_text()
    assert "id='trust'" not in (run / "report.html").read_text()


def test_diagnostics_have_their_own_table_and_deltas_follow_the_direction(report: Path, tmp_path: Path):
    """latency_s and parse-failure rates leave the accuracy table; FID above the paper is worse."""
    from lavida_bench.tasks import TASKS
    from lavida_bench.tasks.base import aggregate_declared

    rows = [{"id": f"r{i}", "scores": {"split": "refcoco/val", "correct": float(i % 2), "iou": 0.5, "parse_failure": 0,
                                       "latency_s": 0.1 * i, "steps": 1}} for i in range(40)]
    real = {"refcoco": lambda scores: aggregate_declared(TASKS.get("refcoco").metrics, scores)}
    run = write_run(tmp_path / "ref", {"refcoco": {"steps1": rows}}, aggregators=real)
    write_report(run)
    tables = {t["key"]: t for t in json.loads((report / "report" / "tables.json").read_text())}
    tables |= {t["key"]: t for t in json.loads((run / "report" / "tables.json").read_text())}
    refcoco = [r["metric"] for r in tables["refcoco"]["records"]]
    assert "latency_s" not in refcoco and "parse_failure_rate" not in refcoco and "acc/refcoco/val" in refcoco
    diag = {r["metric"]: r for r in tables["refcoco_diagnostics"]["records"]}
    assert diag["latency_s"]["direction"] == "diagnostic" and diag["latency_s"]["units"] == "seconds"
    fid = next(r for r in tables["fid30k"]["records"] if r["variant"] == "plain")
    assert fid["diff"] > 0 and any("(worse)" in c for row in tables["fid30k"]["rows"] for c in row)
    assert any("Lavida-O paper (Li et al., arXiv 2509.19244), GenEval results table" in n
               for n in tables["geneval"]["notes"])
    assert not any("project brief" in n for t in tables.values() for n in t["notes"])


def test_grounding_panel_draws_truth_and_prediction():
    image = Image.new("RGB", (100, 50), (255, 255, 255))
    rec = {"status": "ok", "output": {"boxes": [[50, 5, 90, 45]]}}
    panel = grounding_panels(rec, [image], [10, 10, 40, 40])[0]
    assert panel.image.getpixel((10, 25)) == TRUTH  # left edge of the ground truth
    assert panel.image.getpixel((50, 25)) == PRED  # left edge of the prediction
    assert panel.image.getpixel((30, 25)) == (255, 255, 255)  # inside, not filled
    assert panel.note == "pred [50, 5, 90, 45]; truth [10, 10, 40, 40]"


def test_gallery_rebuilds_inputs_and_ground_truth_from_the_task(tmp_path: Path):
    """The refcoco task is rebuilt from the manifest's data folder: the gallery draws the
    sample's own input image and ground-truth box."""
    from lavida_bench.reports.gallery import build_gallery
    from lavida_bench.reports.load import load_run
    from lavida_bench.tasks import TASKS

    task_cls = TASKS.get("refcoco")
    data = task_cls.make_fixture(tmp_path / "data")
    sample = task_cls(data, {}).load()[0]

    def point_at_fixture(m: dict) -> None:
        m["config"]["tasks"]["refcoco"]["data"] = str(data)
        m["tasks"][0]["capability"] = "ground"

    row = {"id": sample.id, "scores": {"split": sample.data["group"], "correct": 1.0},
           "output": {"boxes": [sample.data["bbox"]], "text": None, "image": None, "attempts": []}}
    run = load_run(write_run(tmp_path / "run", {"refcoco": {"steps1": [row]}}, manifest_edit=point_at_fixture))
    items, notes = build_gallery(run)
    assert notes == [] and len(items) == 1
    assert items[0].prompt == sample.data["expression"]
    panel = items[0].panels[0]
    assert panel.image is not None and "truth [" in panel.note


def chromium_or_skip() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("headless Chromium not found: `chromium` is not on PATH (Debian package `chromium`; "
                    ".ci/run installs it)")
    return exe


PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(e.message || ('failed to load ' + ((e.target && e.target.tagName) || '?')));
}, true);
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length, loaded: loaded,
                                                           errors: window.__errors}));
});
</script>"""


def chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_html_in_headless_chromium(report: Path, tmp_path: Path):
    exe = chromium_or_skip()
    page = (report / "report.html").read_text()
    probed = report / "report.probe.html"  # same folder, so any relative path would resolve alike
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    dom = chromium(exe, tmp_path / "p1", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, "the page's load event never ran"
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["errors"] == []
    assert probe["images"] == page.count("<img ") and probe["loaded"] == probe["images"] >= 10
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console

    shot = tmp_path / "shot.png"
    res = chromium(exe, tmp_path / "p2", "--window-size=1280,1600", f"--screenshot={shot}", (report / "report.html").as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1600)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20  # text, tables and plots, not a blank page
    white = sum(c for c, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.97 * img.size[0] * img.size[1]
    banner = sum(c for c, rgb in colours if rgb == BANNER_RGB)
    assert banner > 1000  # the "not meaningful" banner is visible at the top
