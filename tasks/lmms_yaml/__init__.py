"""lmms-eval task YAMLs that read LOCAL benchmark files, and the helper that points them at yours.

lmms-eval's built-in `chartqa` and `mmmu_val` load `lmms-lab-encoder/*` from the Hugging Face
hub. The templates in this folder are the same tasks (lmms-eval's own prompts and scoring
functions, referenced with `!function lmms_eval.tasks...`) reading parquet files from disk.
A template has no task name and no data, so lmms-eval never runs it by itself; `write_tasks`
writes one small YAML per task into a folder of yours:

    include: <this folder>/chartqa_local.yaml
    task: lavida_chartqa
    dataset_kwargs: {data_files: {test: [/data/ChartQA/data/test-00000-of-00001.parquet, ...]}}

and that folder is what lmms-eval's `--include_path` names. Task names are prefixed `lavida_`
because lmms-eval lets a built-in task win over an included one of the same name
(lmms-eval 0.7.3 `lmms_eval/tasks/__init__.py`, `TaskManager`: built-in tasks are indexed first).

The data must be the lmms-lab parquet layout written by Hugging Face `datasets` (what
`huggingface-cli download lmms-lab/ChartQA --repo-type dataset` gives): its schema metadata
marks image columns as `Image` features, which is how lmms-eval's `doc["image"].convert("RGB")`
gets a picture instead of a `{bytes, path}` dict. `write_tasks` checks this before anything
runs. `chartqa_to_parquet` converts the official vis-nlp/ChartQA test folder into that layout and
`with_image_features` repairs a parquet file whose image columns lack the metadata.

Command line: `python -m lavida_bench.tasks.lmms_yaml --out DIR lavida_chartqa=/data/ChartQA ...`, or
`--out DIR --from-demo runs/demo/assets/data` to convert the demo's fixtures first (`from_demo`).
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavida_bench.api import DataError
from lavida_bench.tasks.base import read_image
from lavida_bench.tasks.files import read_json, split_files

TEMPLATE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LocalTask:
    """A shipped template and what its local parquet files must hold."""

    template: str
    split: str  # the lmms-lab split name, also the `data_files` key the template's *_split reads
    fields: tuple[str, ...]  # columns the lmms-eval utilities read
    image_columns: tuple[str, ...]  # columns that must be HF `Image` features
    benchmark: str  # the lavida-bench task whose MetricSpecs the template's metrics follow
    metrics: tuple[tuple[str, str], ...]  # (lmms-eval metric, lavida-bench metric it reports)


TASKS: dict[str, LocalTask] = {
    # lmms-lab/ChartQA test rows: type, question, answer, image (lmms-lab/ChartQA dataset card)
    "lavida_chartqa": LocalTask("chartqa_local.yaml", "test", ("type", "question", "answer"), ("image",), "chartqa",
                                (("relaxed_overall", "acc"), ("relaxed_human_split", "acc/human"),
                                 ("relaxed_augmented_split", "acc/augmented"))),
    # lmms-lab/MMMU validation rows: id, question, options, answer, question_type, image_1..7 (lmms-lab/MMMU dataset card)
    "lavida_mmmu_val": LocalTask("mmmu_val_local.yaml", "validation",
                                 ("id", "question", "options", "answer", "question_type"),
                                 tuple(f"image_{k}" for k in range(1, 8)), "mmmu", (("mmmu_acc", "acc"),)),
}
UPSTREAM_FUNCTION = "lmms_eval.tasks."  # an aggregation lmms-eval defines itself (`!function ...`)


def template_metrics(template: str) -> list[dict[str, Any]]:
    """The `metric_list` of a shipped template, `!function` tags read as the name they point at."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((TEMPLATE_DIR / template).read_text(encoding="utf-8"), Loader=Loader)["metric_list"]


def metric_problems(name: str) -> list[str]:
    """Where a template's `metric_list` departs from the MetricSpecs its lavida-bench task
    declares: every metric maps to a spec, `higher_is_better` is the spec's direction, and a
    spec that is a mean is aggregated as `mean` (or by lmms-eval's own function for it, MMMU's)."""
    from lavida_bench.tasks import TASKS as BENCHMARKS

    local = TASKS[name]
    task, ours = BENCHMARKS.get(local.benchmark), dict(local.metrics)
    entries = template_metrics(local.template)
    found = [f"{local.template}: metric {m!r} is not in its metric_list" for m in ours
             if m not in {e["metric"] for e in entries}]
    for entry in entries:
        metric, where = entry["metric"], f"{local.template}: metric {entry['metric']!r}"
        if metric not in ours:
            found.append(f"{where}: maps to no {local.benchmark} metric (LocalTask.metrics)")
            continue
        spec = task.spec(ours[metric])
        if entry.get("higher_is_better") is not (spec.direction == "higher"):
            found.append(f"{where}: higher_is_better must be {spec.direction == 'higher'} "
                         f"({local.benchmark} {spec.name!r} is {spec.direction})")
        aggregation = str(entry.get("aggregation"))
        if spec.aggregation.startswith("mean") and aggregation != "mean" and not aggregation.startswith(UPSTREAM_FUNCTION):
            found.append(f"{where}: aggregation {aggregation!r}, but {local.benchmark} {spec.name!r} is a mean")
    return found


def parquet_files(folder: Path, task: str) -> list[Path]:
    """The split's parquet files under a local copy (`**/{split}-*.parquet` or `{split}.parquet`),
    or the file itself when `folder` names one."""
    spec = TASKS[task]
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = [f for f in split_files(folder, spec.split, task) if f.suffix == ".parquet"]
    else:
        raise DataError(f"{task}: {folder} does not exist")
    if not files:
        raise DataError(f"{task}: no {spec.split}-*.parquet or {spec.split}.parquet under {folder} "
                        f"(expected the lmms-lab parquet layout)")
    return [f.resolve() for f in files]


def hf_features(path: Path) -> dict[str, Any]:
    """The `datasets` feature spec stored in a parquet file's schema metadata ({} when absent)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable parquet file ({err})") from err
    raw = meta.get(b"huggingface")
    if raw is None:
        return {}
    try:
        return json.loads(raw).get("info", {}).get("features", {})
    except (json.JSONDecodeError, AttributeError) as err:
        raise DataError(f"{path}: schema metadata 'huggingface' is not valid JSON ({err})") from err


def check_parquet(path: Path, task: str) -> None:
    """Fields present and image columns marked as HF `Image` features, each problem named."""
    import pyarrow.parquet as pq

    spec = TASKS[task]
    features = hf_features(path)  # also the readability check
    names = pq.read_schema(path).names
    missing = [c for c in (*spec.fields, *spec.image_columns) if c not in names]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(map(repr, missing))} for {task} (has: {', '.join(names)})")
    plain = [c for c in spec.image_columns if features.get(c, {}).get("_type") != "Image"]
    if plain:
        raise DataError(f"{path}: field(s) {', '.join(map(repr, plain))} are not Hugging Face Image features, so "
                        f"lmms-eval would pass {{bytes, path}} dicts instead of images; re-save the file with "
                        f"lavida_bench.tasks.lmms_yaml.with_image_features")


def task_yaml(task: str, files: Sequence[Path]) -> str:
    """The YAML of one local task (JSON is valid YAML; absolute paths need no resolving)."""
    spec = TASKS[task]
    lines = ["# Written by lavida_bench.tasks.lmms_yaml.write_tasks; edit data_files to move the data.",
             f"include: {json.dumps(str(TEMPLATE_DIR / spec.template))}",
             f"task: {task}",
             "dataset_kwargs:",
             "  data_files:",
             f"    {spec.split}:"]
    lines += [f"      - {json.dumps(str(f))}" for f in files]
    return "\n".join(lines) + "\n"


def write_tasks(out_dir: str | Path, data: Mapping[str, str | Path]) -> Path:
    """Write one YAML per task into `out_dir` (the folder to pass as lmms-eval's --include_path).

    `data` maps a task name (see TASKS) to a local copy: a dataset folder or one parquet file.
    Every file is checked before anything is written.
    """
    unknown = sorted(set(data) - set(TASKS))
    if unknown:
        raise DataError(f"unknown local task(s) {', '.join(unknown)} (known: {', '.join(TASKS)})")
    plan = {}
    for task, folder in data.items():
        files = parquet_files(Path(folder).expanduser(), task)
        for f in files:
            check_parquet(f, task)
        plan[task] = files
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    for task, files in plan.items():
        (out / f"{task}.yaml").write_text(task_yaml(task, files))
    return out


def task_manager(include_path: str | Path) -> Any:
    """An lmms-eval TaskManager over our tasks only (for `lmms_eval.evaluator.simple_evaluate`):
    skipping the ~2,000 built-in tasks saves about 9 s of indexing (measured with lmms-eval 0.7.3)."""
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(Path(include_path).expanduser()), include_defaults=False)


# -- writing the layout ----------------------------------------------------------------------------

def chartqa_features() -> Any:
    from datasets import Features, Image, Value

    return Features({"type": Value("string"), "question": Value("string"), "answer": Value("string"),
                     "image": Image()})


def chartqa_to_parquet(test_dir: str | Path, out_file: str | Path) -> Path:
    """Convert the official vis-nlp/ChartQA test folder (test_human.json, test_augmented.json,
    png/) into one lmms-lab/ChartQA-style parquet file: `type` is `human_test` or
    `augmented_test`, `question` = `query`, `answer` = `label` (vis-nlp/ChartQA `ChartQA Dataset/test/`, lmms-lab/ChartQA)."""
    import pyarrow as pa

    from lavida_bench.tasks.understanding_fixtures import png_bytes

    test_dir = Path(test_dir)
    if (test_dir / "test").is_dir():
        test_dir = test_dir / "test"
    rows = []
    for split in ("human", "augmented"):
        path = test_dir / f"test_{split}.json"
        records = read_json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of {{imgname, query, label}} records")
        for i, rec in enumerate(records):
            where = f"{path}: record {i}"
            for key in ("imgname", "query", "label"):
                if not isinstance(rec, dict) or not isinstance(rec.get(key), str):
                    raise DataError(f"{where}, field {key!r}: expected a string")
            image = read_image(test_dir / "png" / rec["imgname"], f"{where}, field 'imgname'")
            rows.append({"type": f"{split}_test", "question": rec["query"], "answer": rec["label"],
                         "image": {"bytes": png_bytes(image), "path": rec["imgname"]}})
    return write_table(pa.Table.from_pylist(rows, schema=chartqa_features().arrow_schema), out_file)


def with_image_features(src: str | Path, dst: str | Path, image_columns: Sequence[str]) -> Path:
    """Copy a parquet file, declaring `image_columns` as HF `Image` features in its schema
    metadata (the cells, `{bytes, path}` structs, are unchanged)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image

    try:
        table = pq.read_table(src)
    except (OSError, ValueError) as err:
        raise DataError(f"{src}: not a readable parquet file ({err})") from err
    features = Features.from_arrow_schema(table.schema)
    for column in image_columns:
        if column not in features:
            raise DataError(f"{src}: no field {column!r} (has: {', '.join(table.schema.names)})")
        features[column] = Image()
    try:
        table = table.cast(features.arrow_schema)  # arrow_schema carries the `huggingface` metadata
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DataError(f"{src}: image fields must be {{bytes, path}} structs ({err})") from err
    return write_table(table, dst)


def from_demo(data_root: str | Path, out: str | Path) -> dict[str, Path]:
    """The demo's ChartQA and MMMU fixtures (`lavida-bench demo` writes them under
    OUTPUT/assets/data) converted to the lmms-lab parquet layout under OUT/data: {task: folder},
    ready for `write_tasks`."""
    data_root, out = Path(data_root), Path(out)
    chartqa = chartqa_to_parquet(data_root / "chartqa", out / "data" / "ChartQA" / "data" / "test-00000-of-00001.parquet")
    mmmu_files = sorted((data_root / "mmmu").rglob("validation-*.parquet"))
    if not mmmu_files:
        raise DataError(f"{data_root / 'mmmu'}: no validation-*.parquet (expected the demo's MMMU fixture)")
    for path in mmmu_files:
        with_image_features(path, out / "data" / "MMMU" / "data" / path.name, TASKS["lavida_mmmu_val"].image_columns)
    return {"lavida_chartqa": chartqa.parent.parent, "lavida_mmmu_val": out / "data" / "MMMU"}


def write_table(table: Any, out_file: str | Path) -> Path:
    import pyarrow.parquet as pq

    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lavida_bench.tasks.lmms_yaml",
        description="Write lmms-eval task YAMLs for local data; pass --out DIR to lmms-eval's --include_path.")
    parser.add_argument("--out", required=True, help="folder for the task YAMLs")
    parser.add_argument("data", nargs="*", metavar="TASK=PATH",
                        help=f"local lmms-lab parquet copy per task; tasks: {', '.join(TASKS)}")
    parser.add_argument("--from-demo", metavar="DATA_DIR",
                        help="convert the demo's fixtures (e.g. runs/demo/assets/data) into --out/data and use them")
    args = parser.parse_args(argv)
    data: dict[str, str | Path] = {}
    for item in args.data:
        task, sep, path = item.partition("=")
        if not sep or not path:
            parser.error(f"{item!r}: expected TASK=PATH")
        data[task] = path
    if not data and not args.from_demo:
        parser.error("give TASK=PATH pairs or --from-demo DATA_DIR")
    try:
        if args.from_demo:
            data = {**from_demo(args.from_demo, args.out), **data}
        out = write_tasks(args.out, data)
    except DataError as err:
        print(f"error: {err}")
        return 2
    print(f"wrote {', '.join(sorted(data))} to {out}\n"
          f"run: python -m lmms_eval --model lavida_o --model_args pretrained=CHECKPOINT_DIR "
          f"--tasks {','.join(sorted(data))} --include_path {out} --output_path OUT")
    return 0
