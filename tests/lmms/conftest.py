"""Local benchmark copies in the lmms-lab parquet layout, made from the project's own fixtures."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lavida_bench.tasks import lmms_yaml
from lavida_bench.tasks.chartqa import ChartQA
from lavida_bench.tasks.mmmu import MMMU

MMMU_IMAGES = [f"image_{k}" for k in range(1, 8)]
FILELOCK_HINT = ("lmms-eval 0.7.3's simple_evaluate imports filelock._api, which filelock 4 removed; "
                 "pin filelock<4 (docs/lmms_eval.md, 'Offline and known issues')")


def filelock_has_api() -> bool:
    return importlib.util.find_spec("filelock._api") is not None


@pytest.fixture(scope="session")
def local_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ChartQA (vis-nlp fixture converted to lmms-lab parquet) and MMMU (fixture parquet given
    HF image features), plus the vis-nlp folder itself for cross-checks."""
    root = tmp_path_factory.mktemp("lmms_data")
    vis_nlp = ChartQA.make_fixture(root / "chartqa_vis_nlp", seed=0)
    chartqa = lmms_yaml.chartqa_to_parquet(vis_nlp, root / "ChartQA" / "data" / "test-00000-of-00001.parquet")
    raw_mmmu = MMMU.make_fixture(root / "mmmu_raw", seed=0) / "data" / "validation-00000-of-00001.parquet"
    mmmu = lmms_yaml.with_image_features(raw_mmmu, root / "MMMU" / "data" / raw_mmmu.name, MMMU_IMAGES)
    return {"root": root, "chartqa_vis_nlp": vis_nlp, "chartqa": chartqa.parent.parent, "chartqa_file": chartqa,
            "mmmu": mmmu.parent.parent, "mmmu_file": mmmu, "mmmu_raw_file": raw_mmmu}


@pytest.fixture(scope="session")
def task_dir(local_data: dict[str, Path]) -> Path:
    """The include path lmms-eval is given: one YAML per local task."""
    return lmms_yaml.write_tasks(local_data["root"] / "lmms_tasks",
                                 {"lavida_chartqa": local_data["chartqa"], "lavida_mmmu_val": local_data["mmmu"]})
