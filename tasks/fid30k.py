"""FID-30k: Frechet Inception Distance of generated images against a reference set.

Two reference sets: MJHQ-30K (`reference: mjhq`, the set on which the paper's 6.68 was measured:
LaVida-O `eval_img/eval.py --dataset mjhq` reads it, and arXiv 2512.14008 labels the same number
"MJHQ-30k FID"; `meta_data.json` = {id: {category, prompt}}, images in one folder per
category) and COCO-30k (`reference: coco`, an optional second protocol: 30,000 val2014 images
sampled with a fixed seed, one caption each, FID against those images).

Features, not images, are what aggregation needs, so a metric is recomputed without regenerating:
each score record stores its image's 2048-d Inception features inline (float32, base64, about
11 KB per image: clean-fid's network returns float32, so nothing is lost, and the run folder
stays self-contained), the Inception backend's name and mode (clean-fid `clean`, ...; the resize
choice belongs to the backend and is also in the manifest's fingerprints), and the reference
statistics file with its sha256. That path is absolute because `aggregate` gets no run folder;
after moving a run folder, delete its fid30k scores to re-score. Reference statistics come from
`backends.fid_reference` (a `.npz` with `mu` and `sigma`, or a folder of reference images) or
from this task's reference images, computed once per Inception backend and cached in
`RUN/fid_reference/`.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from PIL import Image

from lavida_bench.api import DataError, Metric, MetricSpec, Request, Sample, Variant
from lavida_bench.backends.fid import IMAGE_SUFFIXES, FrechetToReference, reference_stats, stats_from_features
from lavida_bench.safety import resolve_inside
from lavida_bench.stats import statistic_metric
from lavida_bench.tasks.base import ScoreContext, Task, read_image
from lavida_bench.tasks.files import read_json
from lavida_bench.tasks.generation import generation_request
from lavida_bench.tasks.generation_fixtures import COCO_CAPTIONS, COCO_IMAGES, MJHQ_IMAGES, write_fid_fixture

MJHQ_METADATA = "meta_data.json"  # playgroundai/MJHQ-30K dataset card
COCO_SAMPLE_SIZE = 30_000  # "COCO-30k": 30,000 captions, one per val2014 image
REFERENCE_CACHE = "fid_reference"  # RUN/fid_reference/<set>-<inception>-<digest>.npz
FEATURE_BATCH = 32  # reference images per Inception call


@dataclass(frozen=True)
class FidOptions:
    reference: Literal["mjhq", "coco"] = "mjhq"
    resolution: int | None = None  # output side; None = the model's default (1024, as MJHQ)
    prefix: str = ""  # the paper's FID prefix is not released (LaVida-O has no MJHQ script)
    reference_dir: str | None = None  # image folder inside the data folder; None = the set's default
    coco_sample_size: int = COCO_SAMPLE_SIZE
    coco_seed: int = 0  # which 30,000 val2014 images (and which of their captions) are used
    ci_rounds: int = 50  # bootstrap rounds of the FID interval (each one eigensolve of size min(N, 2048))

    def __post_init__(self) -> None:
        if self.coco_sample_size < 1 or self.ci_rounds < 1:
            raise ValueError("options 'coco_sample_size' and 'ci_rounds' must be >= 1")


class FID30k(Task):
    options_schema = FidOptions
    version = "1"
    capability = "generate"
    variants = ("plain", "plan", "plan_reflect")
    evaluators = ("inception",)
    # A statistic of the whole feature set: no per-sample decomposition, compared unpaired. Below
    # a few hundred images FID is dominated by its small-sample bias (clean-fid README).
    metrics = (MetricSpec("fid", "lower", "FID", "corpus (Frechet distance of the feature set)",
                          headline=True, min_n=100),)

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self._reference: dict[tuple[str, str, str], tuple[Path, str]] = {}
        self._distances: dict[tuple[Path, str], FrechetToReference] = {}

    @property
    def reference_dir(self) -> Path:
        assert self.data_dir is not None
        default = MJHQ_IMAGES if self.options.reference == "mjhq" else COCO_IMAGES
        return self.data_dir / (self.options.reference_dir or default)

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.{self.name}.data)")
        if self.options.reference == "mjhq":
            source, field = self.data_dir / MJHQ_METADATA, "category"
            samples = read_mjhq(source)
        else:
            source, field = self.data_dir / COCO_CAPTIONS, "file_name"
            samples = read_coco(source, self.options.coco_sample_size, self.options.coco_seed)
        self.check_references(samples, source, field)
        return samples

    def check_references(self, samples: list[Sample], source: Path, field: str) -> None:
        """Before any model time: refuse a reference name that leaves the reference folder (a
        `category` or `file_name` with '../', an absolute path), and, when that folder exists,
        any reference image missing from it. Without the folder, scoring takes the reference
        from `backends.fid_reference`."""
        paths = {s.id: resolve_inside(self.reference_dir, s.data["reference"],
                                      f"{source}: record {s.id!r}, field {field!r}") for s in samples}
        missing = [(sid, path) for sid, path in paths.items() if not path.is_file()]
        if missing and self.reference_dir.is_dir():
            sid, path = missing[0]
            raise DataError(f"{source}: record {sid!r}: reference image {path} not found "
                            f"({len(missing)} of {len(paths)} missing from {self.reference_dir})")

    def request(self, sample: Sample, variant: Variant) -> Request:
        prompt = self.options.prefix + sample.data["prompt"]
        return generation_request(sample, "generate", prompt, variant, self.options.resolution)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        base = {"category": sample.data["category"]}
        if not output.get("image"):
            return {**base, "features": None, "reason": "no image returned"}
        inception = ctx.backends.inception
        features = np.asarray(inception.features([ctx.load_image(output["image"])]), dtype=np.float64)
        path, digest = self.reference_stats(ctx)
        return {**base, "features": encode_features(features[0]), "inception": inception.name,
                "inception_mode": getattr(inception, "mode", None), "reference": str(path),
                "reference_sha256": digest}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        usable = [s for s in scores if s.get("features")]
        if len(usable) < 2:  # a covariance needs two images
            return {"fid": Metric(float("nan"), float("nan"), float("nan"), len(usable))}
        for key in ("inception", "inception_mode", "reference_sha256"):
            values = {s[key] for s in usable}
            if len(values) > 1:
                raise DataError(f"task {self.name}: score records mix {key} values {sorted(map(str, values))}; "
                                f"re-score the run with one setting")
        distance = self.distance_to(Path(usable[0]["reference"]), usable[0]["reference_sha256"])
        features = np.stack([decode_features(s["features"]) for s in usable])
        try:
            return {"fid": statistic_metric(list(range(len(features))), lambda idx: distance(features[idx]),
                                            n_boot=self.options.ci_rounds)}
        except ValueError as err:  # backends/fid.py refuses a degenerate square root as clean-fid does
            raise DataError(f"task {self.name}: reference {usable[0]['reference']}: {err}") from err

    def distance_to(self, path: Path, sha256: str) -> "FrechetToReference":
        """The distance to one reference, prepared once per task (variants share it)."""
        if (path, sha256) not in self._distances:
            self._distances[(path, sha256)] = FrechetToReference(*load_stats(path))
        return self._distances[(path, sha256)]

    def reference_stats(self, ctx: ScoreContext) -> tuple[Path, str]:
        """(statistics file, its sha256) for this run's Inception backend: `backends.fid_reference`
        when it is a `.npz`; else the statistics of a reference image folder (that setting, or
        this task's reference images) computed once and cached under RUN/fid_reference/."""
        inception = ctx.backends.inception
        key = (str(ctx.run_dir), inception.name, str(getattr(inception, "mode", None)))
        if key not in self._reference:
            configured = ctx.backends.cfg.fid_reference
            if configured and not Path(configured).exists():
                raise FileNotFoundError(f"backends.fid_reference={configured} does not exist: put a .npz "
                                        f"with 'mu' and 'sigma' or a reference image folder there, or "
                                        f"unset it to use the images in {self.reference_dir}")
            if configured and Path(configured).is_file():
                path = Path(configured)
            else:
                path = self.cached_reference(ctx, Path(configured) if configured else None)
            self._reference[key] = (path.resolve(), file_sha256(path))
        return self._reference[key]

    def reference_images(self) -> list[Path]:
        return [resolve_inside(self.reference_dir, s.data["reference"], f"{self.name} sample {s.id}")
                for s in self.load()]

    def cached_reference(self, ctx: ScoreContext, folder: Path | None) -> Path:
        """Reference statistics computed once per (image set, Inception backend and mode)."""
        inception = ctx.backends.inception
        if folder is None:
            label, paths = self.options.reference, self.reference_images()
        else:
            label = "custom"
            paths = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{self.reference_dir}: {len(missing)} reference image(s) missing, e.g. {missing[0]}")
        listing = json.dumps({"backend": inception.name, "mode": getattr(inception, "mode", None),
                              "files": [(str(p), p.stat().st_size) for p in paths]})
        digest = hashlib.sha256(listing.encode()).hexdigest()[:16]
        target = ctx.run_dir / REFERENCE_CACHE / f"{label}-{inception.name}-{digest}.npz"
        if not target.is_file():
            features = np.concatenate([np.asarray(inception.features(load_images(paths[i:i + FEATURE_BATCH])),
                                                  dtype=np.float64)
                                       for i in range(0, len(paths), FEATURE_BATCH)])
            mu, sigma = stats_from_features(features)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp.npz")
            np.savez(tmp, mu=mu, sigma=sigma)
            tmp.replace(target)
        return target

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        if self.options.reference != "mjhq":
            return [f"reference set {self.options.reference!r} (the paper's FID is on MJHQ-30K)"]
        return []

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        """Six shapes-world prompts in two categories, with the same reference images laid out
        both as MJHQ-30K and as COCO val2014."""
        return write_fid_fixture(Path(root), seed)


# ------------------------------------------------------------------------------------------------
# data


def read_mjhq(path: Path) -> list[Sample]:
    """`meta_data.json`: {id: {"category", "prompt"}}; reference image `<category>/<id>.jpg`."""
    meta = read_json(path, "MJHQ-30K meta_data.json")
    if not isinstance(meta, dict) or not meta:
        raise DataError(f"{path}: expected a non-empty JSON object keyed by image id")
    samples = []
    for key in sorted(meta):
        entry = meta[key]
        for field in ("category", "prompt"):
            if not isinstance(entry, dict) or not isinstance(entry.get(field), str) or not entry[field]:
                raise DataError(f"{path}: record {key!r}: field {field!r} must be a non-empty string")
        samples.append(Sample(key, {"prompt": entry["prompt"], "category": entry["category"],
                                    "reference": f"{entry['category']}/{key}.jpg"}))
    return samples


def read_coco(path: Path, size: int, seed: int) -> list[Sample]:
    """COCO 2014 captions -> `size` images drawn with `seed`, one of each image's captions."""
    data = read_json(path, "COCO captions_val2014.json")
    try:
        files = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        captions: dict[int, list[str]] = {}
        for ann in data["annotations"]:
            captions.setdefault(int(ann["image_id"]), []).append(str(ann["caption"]).strip())
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: expected 'images' [{{id, file_name}}] and 'annotations' "
                        f"[{{image_id, caption}}] ({type(err).__name__}: {err})") from err
    ids = sorted(i for i in files if captions.get(i))
    if not ids:
        raise DataError(f"{path}: no image has a caption")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(ids, size=min(size, len(ids)), replace=False).tolist())
    return [Sample(str(i), {"prompt": captions[i][int(rng.integers(len(captions[i])))],
                            "category": "coco", "reference": files[i]}) for i in chosen]


def load_images(paths: Sequence[Path]) -> list[Image.Image]:
    out = []
    for p in paths:
        out.append(read_image(p, f"{p}: reference image"))
    return out


# ------------------------------------------------------------------------------------------------
# features and distance


def encode_features(x: np.ndarray) -> str:
    return base64.b64encode(np.asarray(x, dtype="<f4").tobytes()).decode("ascii")


def decode_features(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def load_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of a stored reference; a missing or broken file is a DataError with the fix."""
    try:
        return reference_stats(path)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(f"{path}: reference statistics unusable ({err}); re-score the run (delete its "
                        f"fid30k scores.jsonl) or set backends.fid_reference") from err


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
