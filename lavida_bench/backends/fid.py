"""FID: Inception feature backends and the Frechet distance computed from features.

FID is computed from stored features, so a metric can be recomputed (new reference set, new
Inception implementation) without regenerating images. The distance follows clean-fid
(GaParmar/clean-fid `cleanfid/fid.py::frechet_distance`):
``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))``, adding 1e-6 I to both covariances when the
matrix square root is not finite, refusing a square root whose diagonal has an imaginary part
above 1e-3 (clean-fid 0.1.35) and otherwise taking the real part. Covariances use ddof=1 (numpy's
`np.cov`, as clean-fid and torchmetrics do).

Backends:
- `clean_fid`: clean-fid's TorchScript Inception (`inception-2015-12-05.pt`) from a local file,
  with clean-fid's own resizer for the configured mode (`clean`: PIL bicubic on float channels to
  299x299; `legacy_tensorflow`: the network resizes). Never downloads.
- `torchmetrics`: torchmetrics' `NoTrainInceptionV3` (torch-fidelity's port) with local weights,
  the second implementation; it resizes inside the network (bilinear), so its features differ.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
from PIL import Image
from scipy import linalg

from lavida_bench.backends.base import Backend
from lavida_bench.backends.local import optional_import, require_path, resolve_device

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

FEATURE_DIM = 2048
SQRTM_EPS = 1e-6  # clean-fid's frechet_distance default
# clean-fid 0.1.35 (the pinned release, GaParmar/clean-fid commit c8ffa42) cleanfid/fid.py lines
# 55-58: np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3) or raise (later commits, unreleased,
# comment the check out)
IMAGINARY_ATOL = 1e-3
# Image files clean-fid's folder mode reads (`cleanfid/utils.py` EXTENSIONS), minus its .npy arrays.
IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
CLEAN_FID_FILE = "inception-2015-12-05.pt"  # the name clean-fid's InceptionV3W loads


class FeatureBackend(Protocol):
    name: str

    def features(self, images: list[Image.Image]) -> np.ndarray: ...


def stats_from_features(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (ddof=1) of features [N, D]; needs N >= 2."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"FID needs features of shape [N >= 2, D], got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = SQRTM_EPS) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"FID statistics disagree in shape: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_ATOL):
            raise imaginary_refusal(float(np.max(np.abs(covmean.imag))))
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def imaginary_refusal(imaginary: float) -> ValueError:
    """The error of a square root too far from real to take its real part (clean-fid stops there)."""
    return ValueError(f"FID: sqrtm(sigma1 @ sigma2) has an imaginary component of {imaginary:.3g} "
                      f"(above {IMAGINARY_ATOL} on its diagonal, where clean-fid stops): a covariance is "
                      f"not positive semi-definite or their product is numerically degenerate")


def real_sqrt(eigenvalues: np.ndarray) -> np.ndarray:
    """Square roots of a symmetric PSD matrix's eigenvalues: negative round-off within clean-fid's
    tolerance (an imaginary root of at most IMAGINARY_ATOL) becomes 0, as clean-fid takes the
    real part; beyond it, the same refusal as `frechet_distance`."""
    lowest = float(eigenvalues.min(initial=0.0))
    if lowest < -IMAGINARY_ATOL ** 2:
        raise imaginary_refusal(math.sqrt(-lowest))
    return np.sqrt(np.clip(eigenvalues, 0, None))


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets [N, D] and [M, D]."""
    return frechet_distance(*stats_from_features(a), *stats_from_features(b))


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (see `real_sqrt` for negative eigenvalues)."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * real_sqrt(w)) @ v.T


class FrechetToReference:
    """`frechet_distance` of many feature sets against one fixed reference (FID-30k's value and
    its bootstrap rounds): ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2)), with the same
    tolerance for a square root that is not real and the same error beyond it (`real_sqrt`).

    Why not scipy's sqrtm per call: the bootstrap evaluates this many times against the same
    reference. With centred features Xc (N x D) and S1 = Xc^T Xc / (N - 1), the non-zero
    eigenvalues of S1 S2 are those of Xc S2 Xc^T / (N - 1) (N x N, symmetric PSD), and, with
    R = S2^(1/2), also those of R S1 R = Y^T Y / (N - 1) for Y = Xc R (D x D). So
    Tr(sqrtm(S1 S2)) = sum of sqrt(eigenvalues) of whichever is smaller: one symmetric
    eigensolve of size min(N, D) per call, exact and never complex; R (one D x D eigensolve) is
    computed only when N > D, and once.
    """

    def __init__(self, mu_ref: np.ndarray, sigma_ref: np.ndarray):
        self.mu_ref, self.sigma_ref = mu_ref, sigma_ref

    @functools.cached_property
    def root(self) -> np.ndarray:
        return psd_sqrt(self.sigma_ref)

    def __call__(self, features: np.ndarray) -> float:
        n, dim = features.shape
        mu = features.mean(axis=0)
        centred = features - mu
        if n <= dim:
            gram = centred @ self.sigma_ref @ centred.T / (n - 1)
        else:
            y = centred @ self.root
            gram = y.T @ y / (n - 1)
        trace_sqrt = real_sqrt(np.linalg.eigvalsh((gram + gram.T) / 2)).sum()
        trace_sigma = float((centred * centred).sum()) / (n - 1)
        diff = mu - self.mu_ref
        return float(diff @ diff + trace_sigma + np.trace(self.sigma_ref) - 2 * trace_sqrt)


def reference_stats(path: str | Path, inception: FeatureBackend | None = None,
                    cache_dir: str | Path | None = None,
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Reference (mu, sigma) from a local `.npz` (keys `mu` and `sigma`, clean-fid's layout, or
    `features` [N, D]) or from a folder of reference images.

    A folder needs the `inception` backend that will score the generated images (statistics from
    one network are meaningless against features of another). With `cache_dir`, the statistics
    are stored as `.npz` keyed by backend and the folder's file listing, and reused next time.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"FID reference {p} does not exist: give a .npz with mu/sigma or "
                                f"a folder of reference images (backends.fid_reference)")
    if p.is_file():
        return _load_npz(p)
    if inception is None:
        raise ValueError(f"FID reference {p} is an image folder: computing its statistics needs an "
                         f"inception backend")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise ValueError(f"FID reference folder {p} holds {len(files)} images; need at least 2")
    cache = _stats_cache_path(p, files, inception, cache_dir) if cache_dir is not None else None
    if cache is not None and cache.exists():
        return _load_npz(cache)
    feats = np.concatenate([inception.features(_open_all(chunk))
                            for chunk in _chunks(files, batch_size)])
    mu, sigma = stats_from_features(feats)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, mu=mu, sigma=sigma, count=np.array(len(files)))
        os.replace(tmp, cache)
    return mu, sigma


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" in data and "sigma" in data:
                mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            elif "features" in data:
                mu, sigma = stats_from_features(data["features"])
            else:
                raise ValueError(f"{path}: FID reference .npz needs keys 'mu' and 'sigma' (or "
                                 f"'features'); found {sorted(data.files)}")
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read FID reference statistics ({err})") from err
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: field 'mu' must be [D] and 'sigma' [D, D]; got {mu.shape}, {sigma.shape}")
    return mu, sigma


def _stats_cache_path(folder: Path, files: list[Path], inception: FeatureBackend,
                      cache_dir: str | Path) -> Path:
    listing = [(str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = json.dumps({"backend": inception.name, "mode": getattr(inception, "mode", None),
                      "files": listing})
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"fid_reference_{inception.name}_{digest}.npz"


def _chunks(items: list[Path], size: int) -> Iterable[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _open_all(files: list[Path]) -> list[Image.Image]:
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(im.convert("RGB"))
        except OSError as err:
            raise ValueError(f"{f}: cannot read FID reference image ({err})") from err
    return images


def _run_grouped(net: Any, tensors: list[Any], device: str) -> np.ndarray:
    """Run `net` over CHW tensors, batching those of equal shape; features in input order."""
    import torch

    out: list[np.ndarray | None] = [None] * len(tensors)
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        shapes.setdefault(tuple(t.shape), []).append(i)
    with torch.inference_mode():
        for indices in shapes.values():
            feats = net(torch.stack([tensors[i] for i in indices]).to(device))
            for i, row in zip(indices, feats.reshape(len(indices), -1).double().cpu().numpy()):
                out[i] = row
    if not out:
        return np.zeros((0, FEATURE_DIM))
    return np.stack(out)  # type: ignore[arg-type]


class CleanFidInception(Backend):
    """clean-fid's Inception from a local `inception-2015-12-05.pt` (file or folder)."""

    name: ClassVar[str] = "clean_fid"
    path_key = "inception_path"
    path_hint = f"clean-fid's {CLEAN_FID_FILE} (the file or its folder)"
    modes = ("clean", "legacy_tensorflow")  # legacy_pytorch needs pytorch-fid weights

    def __init__(self, net: Any, resize: Any, mode: str, device: str):
        self.net, self.resize, self.mode, self.device = net, resize, mode, device

    @classmethod
    def check(cls, cfg: BackendsConfig) -> None:
        if cfg.inception_mode not in cls.modes:
            raise ValueError(f"backends.inception_mode={cfg.inception_mode!r}: clean_fid supports "
                             f"{', '.join(cls.modes)}")
        cls._folder(cfg)

    @classmethod
    def _folder(cls, cfg: BackendsConfig) -> Path:
        path = require_path(cfg.inception_path, cls.path_key, cls.path_hint)
        folder = path if path.is_dir() else path.parent
        if (path.is_file() and path.name != CLEAN_FID_FILE) or not (folder / CLEAN_FID_FILE).exists():
            raise FileNotFoundError(f"backends.inception_path={path}: clean-fid loads a file named "
                                    f"{CLEAN_FID_FILE}; give that file or its folder")
        return folder

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> CleanFidInception:
        cls.check(cfg)
        folder = cls._folder(cfg)
        optional_import("cleanfid", cls.name, "pip install clean-fid==0.1.35")
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        device = resolve_device(cfg.device)
        net = InceptionV3W(str(folder), download=False,
                           resize_inside=cfg.inception_mode == "legacy_tensorflow").to(device).eval()
        return cls(net, build_resizer(cfg.inception_mode), cfg.inception_mode, device)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "clean-fid InceptionV3W (TorchScript)", "mode": cfg.inception_mode}

    def features(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        tensors = []
        for image in images:
            arr = self.resize(np.asarray(image.convert("RGB")))  # HWC, values in [0, 255]
            tensors.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1))
        return _run_grouped(self.net, tensors, self.device)


class TorchmetricsInception(Backend):
    """torchmetrics' `NoTrainInceptionV3` (needs torch-fidelity) with local weights."""

    name: ClassVar[str] = "torchmetrics"
    path_key = "inception_path"
    path_hint = "torch-fidelity's weights-inception-2015-12-05-6726825d.pth"

    def __init__(self, net: Any, device: str):
        self.net, self.device, self.mode = net, device, "torchmetrics"

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> TorchmetricsInception:
        path = require_path(cfg.inception_path, cls.path_key, cls.path_hint)
        optional_import("torch_fidelity", cls.name, "pip install torch-fidelity")
        from torchmetrics.image.fid import NoTrainInceptionV3

        device = resolve_device(cfg.device)
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(FEATURE_DIM)],
                                 feature_extractor_weights_path=str(path))
        return cls(net.to(device).eval(), device)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "torchmetrics NoTrainInceptionV3 (torch-fidelity)",
                "mode": "resize inside the network"}

    def features(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        tensors = [torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1) for im in images]
        return _run_grouped(self.net, tensors, self.device)  # uint8 NCHW, as torchmetrics feeds it
