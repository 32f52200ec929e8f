"""FID from features: closed forms, agreement with clean-fid and torchmetrics, reference stats,
and the clean-fid feature backend's loading path (with a tiny stand-in TorchScript network)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lavida_bench.backends import Backends, BackendsConfig
from lavida_bench.backends.fid import (
    fid_from_features,
    frechet_distance,
    reference_stats,
    stats_from_features,
)


def test_one_dimensional_hand_value() -> None:
    # a = {-1, 1}: mean 0, variance (ddof 1) 2; b = {2, 4}: mean 3, variance 2
    # FID = 3^2 + 2 + 2 - 2 sqrt(2 * 2) = 9
    assert fid_from_features(np.array([[-1.0], [1.0]]), np.array([[2.0], [4.0]])) == pytest.approx(9.0)


def test_diagonal_closed_form() -> None:
    # points (+-x, 0), (0, +-y): mean 0, covariance diag(2x^2/3, 2y^2/3)
    def cross(x: float, y: float, shift: tuple[float, float]) -> np.ndarray:
        return np.array([[x, 0], [-x, 0], [0, y], [0, -y]]) + np.array(shift)

    a, b = cross(3, 6, (0, 0)), cross(6, 3, (1, 2))
    sa, sb = np.sqrt([6.0, 24.0]), np.sqrt([24.0, 6.0])  # standard deviations
    expected = 1 + 4 + ((sa - sb) ** 2).sum()  # |dmu|^2 + sum (sigma_a - sigma_b)^2 = 5 + 12
    assert fid_from_features(a, b) == pytest.approx(expected) == pytest.approx(17.0)


def test_non_commuting_closed_form() -> None:
    # S1 = I, S2 = [[2, 1], [1, 2]] (eigenvalues 3, 1): Tr(I + S2 - 2 sqrt(S2)) = 2 + 4 - 2 (sqrt3 + 1)
    value = frechet_distance(np.zeros(2), np.eye(2), np.array([1.0, 1.0]), np.array([[2.0, 1.0], [1.0, 2.0]]))
    assert value == pytest.approx(2 + 4 - 2 * (math.sqrt(3) + 1) + 2)


@pytest.mark.parametrize("imaginary", [0.9e-3, 1.1e-3])
def test_imaginary_square_root_refused_above_clean_fids_tolerance(imaginary: float) -> None:
    """sigma1 = diag(1, -imaginary^2) is not PSD: sqrtm(sigma1 @ I) has `imaginary`j on its
    diagonal. clean-fid 0.1.35 takes the real part up to 1e-3 and raises above; so do we."""
    from cleanfid.fid import frechet_distance as clean_fid_distance

    stats = (np.zeros(2), np.diag([1.0, -imaginary**2]), np.zeros(2), np.eye(2))
    if imaginary < 1e-3:
        assert frechet_distance(*stats) == pytest.approx(clean_fid_distance(*stats), abs=1e-12)
        return
    with pytest.raises(ValueError, match="Imaginary component"):
        clean_fid_distance(*stats)
    with pytest.raises(ValueError, match=r"imaginary component of 0.0011 .*not positive semi-definite"):
        frechet_distance(*stats)


def test_gaussian_samples_approach_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(20000, 4))
    b = rng.normal(0.5, 2.0, size=(20000, 4))
    # 4 dims: |dmu|^2 = 4 * 0.25, trace term = 4 * (1 - 2)^2
    assert fid_from_features(a, b) == pytest.approx(1.0 + 4.0, abs=0.15)


def test_agrees_with_clean_fid_and_torchmetrics() -> None:
    from cleanfid.fid import fid_from_feats
    from torchmetrics.image.fid import FrechetInceptionDistance

    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 24))
    b = rng.normal(loc=0.3, scale=1.4, size=(250, 24)) @ rng.normal(size=(24, 24)) * 0.3
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(fid_from_feats(a, b), rel=1e-9)

    class Identity(torch.nn.Module):
        num_features = 24

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    metric = FrechetInceptionDistance(feature=Identity())
    metric.update(torch.from_numpy(a), real=True)
    metric.update(torch.from_numpy(b), real=False)
    assert ours == pytest.approx(float(metric.compute()), rel=1e-6)


def test_stats_need_two_samples() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        stats_from_features(np.zeros((1, 3)))


def test_reference_stats_from_npz(tmp_path: Path) -> None:
    mu, sigma = np.array([1.0, 2.0]), np.eye(2)
    np.savez(tmp_path / "ref.npz", mu=mu, sigma=sigma)
    got_mu, got_sigma = reference_stats(tmp_path / "ref.npz")
    assert np.array_equal(got_mu, mu) and np.array_equal(got_sigma, sigma)
    feats = np.array([[0.0, 0.0], [2.0, 4.0]])
    np.savez(tmp_path / "feats.npz", features=feats)
    assert frechet_distance(*stats_from_features(feats), *reference_stats(tmp_path / "feats.npz")) == pytest.approx(0.0, abs=1e-9)
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="bad.npz.*'mu' and 'sigma'"):
        reference_stats(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="fid_reference"):
        reference_stats(tmp_path / "missing.npz")


def test_reference_stats_from_folder_are_cached(tmp_path: Path) -> None:
    folder = tmp_path / "refimgs"
    folder.mkdir()
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        Image.new("RGB", (16, 16), color).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("ignored")
    inception = Backends(BackendsConfig.standins()).inception
    with pytest.raises(ValueError, match="needs an inception backend"):
        reference_stats(folder)
    mu, sigma = reference_stats(folder, inception, cache_dir=tmp_path / "cache", batch_size=2)
    feats = inception.features([Image.open(folder / f"{i}.png") for i in range(3)])
    assert np.allclose(mu, feats.mean(0)) and np.allclose(sigma, np.cov(feats, rowvar=False))
    [cached] = list((tmp_path / "cache").glob("*.npz"))

    class Exploding:
        name = "standin"

        def features(self, images: list) -> np.ndarray:
            raise AssertionError("should have used the cache")

    mu2, _ = reference_stats(folder, Exploding(), cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    assert np.array_equal(mu, mu2) and cached.exists()


class _Layers(torch.nn.Module):
    """Stand-in for the Inception trunk: per-channel mean of the normalised input, repeated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)).sum(dim=1, keepdim=True).repeat(1, 2048)


class _Base(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.layers((x - 128) / 128)


@pytest.fixture
def fake_clean_fid(tmp_path: Path) -> Path:
    torch.jit.script(_Base()).save(str(tmp_path / "inception-2015-12-05.pt"))
    return tmp_path


def test_clean_fid_backend_resizes_like_clean_fid(fake_clean_fid: Path) -> None:
    backend = Backends(BackendsConfig(inception="clean_fid", inception_path=str(fake_clean_fid),
                                      device="cpu")).inception
    images = [Image.new("RGB", (40, 30), (128, 192, 255)), Image.new("RGB", (64, 64), (0, 128, 128))]
    feats = backend.features(images)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    # a flat image stays flat under clean-fid's bicubic resize to 299: feature = sum (c - 128) / 128
    assert feats[0, 0] == pytest.approx((0 + 64 + 127) / 128, abs=1e-5)
    assert feats[1, 0] == pytest.approx((-128 + 0 + 0) / 128, abs=1e-5)
    assert np.allclose(backend.features(images[1:]), feats[1:])  # batch-size independent


def test_clean_fid_backend_wants_the_canonical_file(tmp_path: Path) -> None:
    (tmp_path / "my_inception.pt").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt"):
        Backends(BackendsConfig(inception="clean_fid", inception_path=str(tmp_path / "my_inception.pt")))
    with pytest.raises(ValueError, match="inception_mode"):
        Backends(BackendsConfig(inception="clean_fid", inception_path=str(tmp_path),
                                inception_mode="legacy_pytorch"))


def test_torchmetrics_backend_without_torch_fidelity_says_so(tmp_path: Path) -> None:
    try:
        import torch_fidelity  # noqa: F401
        pytest.skip("torch-fidelity is installed here")
    except ImportError:
        pass
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    with pytest.raises(ImportError, match="torch-fidelity"):
        _ = Backends(BackendsConfig(inception="torchmetrics", inception_path=str(weights))).inception


def test_backends_fid_reference_stats(tmp_path: Path) -> None:
    folder = tmp_path / "ref"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (80 * i, 10, 10)).save(folder / f"{i}.png")
    backends = Backends(BackendsConfig(inception="standin", fid_reference=str(folder)), cache_dir=tmp_path / "run")
    mu, _ = backends.fid_reference_stats()
    assert mu.shape == (2048,)
    assert len(list((tmp_path / "run").glob("fid_reference_standin_*.npz"))) == 1
    with pytest.raises(FileNotFoundError, match="backends.fid_reference=.*missing does not exist"):
        Backends(BackendsConfig(fid_reference=str(tmp_path / "missing")))
    with pytest.raises(FileNotFoundError, match="backends.fid_reference is not set"):
        Backends(BackendsConfig.standins()).fid_reference_stats()
