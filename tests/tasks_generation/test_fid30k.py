"""FID-30k: MJHQ and COCO loading, stored features, reference statistics, the distance."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from lavida_bench.api import DataError, Sample, Variant
from lavida_bench.backends import BackendsConfig
from lavida_bench.backends.fid import FrechetToReference, frechet_distance, stats_from_features
from lavida_bench.tasks.base import ScoreContext
from lavida_bench.tasks.fid30k import FID30k, decode_features, encode_features, read_coco, read_mjhq
from tests.tasks_generation.fakes import standin_context, store_image


def exact_gaussian(n, mean, variances, seed=0):
    """n points whose sample mean and (ddof=1) covariance are exactly `mean` and diag(variances)."""
    x = np.random.default_rng(seed).standard_normal((n, len(mean)))
    x -= x.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(x, rowvar=False))
    x = x @ v @ np.diag(w ** -0.5) @ v.T  # whitened: covariance I
    return x * np.sqrt(variances) + mean


def test_frechet_matches_closed_form_for_gaussians():
    # N(m, diag(s)) vs N(0, I): |m|^2 + sum (sqrt(s) - 1)^2 = 5 + (1 + 0 + 4) = 10
    feats = exact_gaussian(50, np.array([1.0, 2.0, 0.0]), np.array([4.0, 1.0, 9.0]))
    assert FrechetToReference(np.zeros(3), np.eye(3))(feats) == pytest.approx(10.0, abs=1e-9)


def test_frechet_matches_the_backend_distance_on_the_same_features():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8))
    gen = rng.standard_normal((200, 8)) * 1.5 + 0.3
    mu, sigma = ref.mean(axis=0), np.cov(ref, rowvar=False)
    assert FrechetToReference(mu, sigma)(gen) == pytest.approx(frechet_distance(*stats_from_features(gen), mu, sigma), rel=1e-9)


def test_frechet_with_fewer_images_than_dimensions():
    # N < D takes the N x N route; the backend's scipy sqrtm on the D x D product must agree
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((400, 40))
    gen = rng.standard_normal((12, 40)) + 0.5
    mu, sigma = ref.mean(axis=0), np.cov(ref, rowvar=False)
    assert FrechetToReference(mu, sigma)(gen) == pytest.approx(frechet_distance(*stats_from_features(gen), mu, sigma), rel=1e-6)


def test_features_round_trip_as_float32():
    x = np.random.default_rng(2).standard_normal(2048)
    text = encode_features(x)
    assert np.array_equal(decode_features(text), x.astype(np.float32).astype(np.float64))
    assert len(text) == 10924  # 2048 * 4 bytes in base64


def test_mjhq_loader_and_bad_records(tmp_path):
    path = tmp_path / "meta_data.json"
    path.write_text(json.dumps({"b2": {"category": "food", "prompt": "soup"},
                                "a1": {"category": "animals", "prompt": "a cat"}}))
    samples = read_mjhq(path)
    assert [s.id for s in samples] == ["a1", "b2"]
    assert samples[0].data == {"prompt": "a cat", "category": "animals", "reference": "animals/a1.jpg"}
    path.write_text(json.dumps({"a1": {"category": "animals"}}))
    with pytest.raises(DataError, match=r"meta_data.json: record 'a1': field 'prompt'"):
        read_mjhq(path)


def test_coco_sampling_is_seeded_and_one_caption_per_image(tmp_path):
    root = FID30k.make_fixture(tmp_path)
    path = root / "annotations" / "captions_val2014.json"
    first, again = read_coco(path, 4, seed=0), read_coco(path, 4, seed=0)
    assert [s.id for s in first] == [s.id for s in again] and len(first) == 4
    assert all(s.data["reference"].startswith("COCO_val2014_") for s in first)
    assert len(read_coco(path, 30_000, seed=0)) == 6  # fewer images than asked: all of them
    ids = [[s.id for s in read_coco(path, 3, seed=k)] for k in range(6)]
    assert any(other != ids[0] for other in ids[1:])  # the seed chooses the images


def test_request_prompt_and_prefix(tmp_path):
    root = FID30k.make_fixture(tmp_path)
    sample = FID30k(root).load()[0]
    assert FID30k(root).request(sample, Variant("plain")).prompt == sample.data["prompt"]
    assert FID30k(root, {"prefix": "4k. "}).request(sample, Variant("plain")).prompt == "4k. " + sample.data["prompt"]


def score_all(task, ctx, images):
    return [task.score(s, store_image(ctx.run_dir, im, f"{i}.png"), ctx) for i, (s, im) in enumerate(images)]


def test_reference_images_as_generated_give_fid_zero(tmp_path):
    root = FID30k.make_fixture(tmp_path / "data")
    task = FID30k(root, {"ci_rounds": 5})
    ctx = standin_context(tmp_path / "run")
    pairs = [(s, Image.open(root / "mjhq30k_imgs" / s.data["reference"]).convert("RGB")) for s in task.load()]
    scores = score_all(task, ctx, pairs)
    assert scores[0]["inception"] == "standin" and scores[0]["category"] in ("animals", "food")
    assert len(list((tmp_path / "run" / "fid_reference").glob("mjhq-standin-*.npz"))) == 1
    fid = task.aggregate(scores)["fid"]
    assert fid.value == pytest.approx(0.0, abs=1e-4) and fid.n == 6
    grey = score_all(task, ctx, [(s, Image.new("RGB", (256, 256), (128, 128, 128))) for s in task.load()])
    assert task.aggregate(grey)["fid"].value > 1.0  # same reference: its square root is reused


def test_configured_reference_npz_is_used_and_recorded(tmp_path):
    root = FID30k.make_fixture(tmp_path / "data")
    stats = tmp_path / "ref.npz"
    np.savez(stats, mu=np.zeros(2048), sigma=np.eye(2048))
    ctx = standin_context(tmp_path / "run", fid_reference=str(stats))
    task = FID30k(root)
    record = task.score(task.load()[0], store_image(ctx.run_dir, Image.new("RGB", (32, 32))), ctx)
    assert record["reference"] == str(stats.resolve())
    assert not (tmp_path / "run" / "fid_reference").exists()


class CountingInception:
    name, standin, mode = "counting", True, "clean"

    def __init__(self):
        self.calls = 0

    def features(self, images):
        self.calls += 1
        return np.array([[float(np.asarray(im).mean()), float(i)] for i, im in enumerate(images)])


def test_reference_statistics_are_computed_once(tmp_path):
    root = FID30k.make_fixture(tmp_path / "data")
    inception = CountingInception()
    ctx = ScoreContext(tmp_path / "run", SimpleNamespace(cfg=BackendsConfig.standins(), inception=inception))
    task = FID30k(root)
    for s in task.load()[:3]:
        task.score(s, store_image(ctx.run_dir, Image.new("RGB", (8, 8))), ctx)
    assert inception.calls == 1 + 3  # one reference batch (6 images), then one call per image
    fresh = FID30k(root)  # a new process: the cached file is reused, not recomputed
    fresh.score(task.load()[0], store_image(ctx.run_dir, Image.new("RGB", (8, 8))), ctx)
    assert inception.calls == 5


def test_aggregate_guards(tmp_path):
    task = FID30k(None)
    assert np.isnan(task.aggregate([{"features": None, "category": "x"}])["fid"].value)
    a = {"features": encode_features(np.zeros(2)), "inception": "a", "inception_mode": None,
         "reference": str(tmp_path / "r.npz"), "reference_sha256": "1"}
    with pytest.raises(DataError, match="mix inception values"):
        task.aggregate([a, {**a, "inception": "b"}])
    with pytest.raises(DataError, match="r.npz: reference statistics unusable"):
        task.aggregate([a, a])


def test_missing_configured_reference_names_the_key(tmp_path):
    root = FID30k.make_fixture(tmp_path / "data")
    ctx = ScoreContext(tmp_path, SimpleNamespace(cfg=BackendsConfig(fid_reference=str(tmp_path / "no.npz")),
                                                 inception=CountingInception()))
    task = FID30k(root)
    with pytest.raises(FileNotFoundError, match="backends.fid_reference="):
        task.score(task.load()[0], store_image(tmp_path, Image.new("RGB", (8, 8))), ctx)


def test_no_image_is_recorded_not_raised(tmp_path):
    sample = Sample("x", {"prompt": "p", "category": "food", "reference": "food/x.jpg"})
    assert FID30k(None).score(sample, {"image": None}, ScoreContext(tmp_path)) == {
        "category": "food", "features": None, "reason": "no image returned"}


@pytest.mark.parametrize("n_images", [2, 40])  # the N x N route and the D x D route
def test_reported_fid_refuses_what_the_backend_refuses(tmp_path, n_images):
    """A reference covariance that is not PSD: frechet_distance (clean-fid 0.1.35) refuses its
    square root; the reported FID-30k must refuse it with the same message, not clip it away."""
    sigma = np.diag([1.0, -(1.1e-3) ** 2])
    np.savez(tmp_path / "ref.npz", mu=np.zeros(2), sigma=sigma)
    features = (np.array([[0.0, -1.0], [0.0, 1.0]]) if n_images == 2  # covariance diag(0, 2)
                else exact_gaussian(n_images, np.zeros(2), np.ones(2)))  # covariance I
    with pytest.raises(ValueError) as backend:
        frechet_distance(*stats_from_features(features), np.zeros(2), sigma)
    record = {"inception": "standin", "inception_mode": None, "reference": str(tmp_path / "ref.npz"),
              "reference_sha256": "1"}
    scores = [{**record, "features": encode_features(f)} for f in features]
    with pytest.raises(DataError) as reported:
        FID30k(None).aggregate(scores)
    assert "imaginary component" in str(backend.value) and str(backend.value) in str(reported.value)


def test_round_off_within_clean_fids_tolerance_is_taken_as_real(tmp_path):
    sigma = np.diag([1.0, -(0.9e-3) ** 2])
    features = np.random.default_rng(0).standard_normal((40, 2))
    expected = frechet_distance(*stats_from_features(features), np.zeros(2), sigma)
    assert FrechetToReference(np.zeros(2), sigma)(features) == pytest.approx(expected, rel=1e-6)
