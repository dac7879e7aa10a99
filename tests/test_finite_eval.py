"""Evaluation on finite datasets (distinct rows, disjoint held-out splits, capped counts) and
the interventional scores on partial factor grids and through `disentangle evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import metrics
from disentangle import represent as represent_lib
from disentangle.data import get_dataset
from disentangle.data.base import ArrayData, GroundTruthData
from disentangle.errors import UserError
from disentangle.evaluation import split_metric_names
from experiments.commands.evaluate import parse_options
from metrics._common import MetricInputError, train_test_split


def _square_images(factors, size=64):
    """A 4x4 white square at (3 a, 3 b): one distinct image per factor row."""
    images = np.zeros((len(factors), size, size, 1), np.uint8)
    for i, (a, b) in enumerate(factors):
        images[i, 2 + 3 * a: 6 + 3 * a, 2 + 3 * b: 6 + 3 * b] = 255
    return images


@pytest.fixture
def npz400(tmp_path):
    factors = np.stack(np.meshgrid(np.arange(20), np.arange(20), indexing="ij"),
                       -1).reshape(-1, 2)
    path = tmp_path / "squares.npz"
    np.savez(path, images=_square_images(factors), factors=factors)
    return path


def _flat_encoder(monkeypatch):
    """Encode by flattening the image (no model): codes identify the row's image."""
    monkeypatch.setattr(represent_lib, "encode_batches",
                        lambda model, obs, batch_size=256: (obs.reshape(len(obs), -1), None, None))


def test_finite_dataset_sampled_without_replacement_and_capped(npz400, monkeypatch):
    ds = get_dataset(f"npz:{npz400}")
    assert ds.finite and len(ds) == 400
    _flat_encoder(monkeypatch)
    with pytest.warns(UserWarning, match="2000 evaluation samples asked for, but it stores 400"):
        enc = represent_lib.represent(None, ds, num_samples=2000, seed=0)
    assert enc.mean.shape == (400, 64 * 64) and len(np.unique(enc.rows)) == 400
    np.testing.assert_array_equal(enc.factors, ds.factors[enc.rows])
    # the split the held-out metrics (DCI, SAP, explicitness) make of these samples
    train, test = train_test_split(len(enc.factors), 0.2, 0)
    assert not set(enc.rows[train].tolist()) & set(enc.rows[test].tolist())
    train_images = {row.tobytes() for row in enc.mean[train]}
    assert not any(row.tobytes() in train_images for row in enc.mean[test])
    # fewer samples than rows: no warning, distinct rows, same sample for the same seed
    again = represent_lib.represent(None, ds, num_samples=300, seed=0)
    assert len(np.unique(again.rows)) == 300
    np.testing.assert_array_equal(again.rows,
                                  represent_lib.represent(None, ds, 300, seed=0).rows)
    # what evaluation did before: ds.sample draws with replacement and the splits overlap
    factors, _ = ds.sample(2000, np.random.default_rng(0))
    flat = factors[:, 0] * 20 + factors[:, 1]
    train, test = train_test_split(2000, 0.2, 0)
    assert set(flat[train].tolist()) & set(flat[test].tolist())


def test_generated_datasets_keep_sampling(monkeypatch):
    ds = get_dataset("dsprites")
    assert not ds.finite
    _flat_encoder(monkeypatch)
    enc = represent_lib.represent(None, ds, num_samples=40, seed=1, batch_size=16)
    assert enc.rows is None and enc.mean.shape[0] == 40


class _Checkerboard(ArrayData):
    """Factors a, b, c in 0..4 stored only where a + b + c is even (63 of 125 combinations):
    changing one factor of a stored row always lands on a missing combination."""

    def __init__(self, constant_c=False):
        grid = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
        grid = grid[grid.sum(axis=1) % 2 == 0]
        if constant_c:
            grid = grid[grid[:, 2] == 0]
        obs = (grid / 4.0).astype(np.float32)
        super().__init__("checkerboard", obs, grid, ("a", "b", "c"), (5, 5, 5))


def test_sharing_sampler_draws_stored_rows_only():
    ds = _Checkerboard()
    rng = np.random.default_rng(0)
    anchors = ds.sample_factors(500, rng)
    k = rng.integers(0, 3, 500)
    pairs = ds.sample_factors_sharing(anchors, k, rng)
    stored = {tuple(r) for r in ds.factors.tolist()}
    assert all(tuple(r) in stored for r in pairs.tolist())
    np.testing.assert_array_equal(pairs[np.arange(500), k], anchors[np.arange(500), k])
    assert (pairs != anchors).any(axis=1).mean() > 0.5  # the other factors do change
    # grid datasets: other factors uniform over the grid, factor k copied
    grid = get_dataset("dsprites")
    f = grid.sample_factors(300, rng)
    out = grid.sample_factors_sharing(f, np.full(300, 2), rng)
    np.testing.assert_array_equal(out[:, 2], f[:, 2])
    assert len(np.unique(out[:, 3])) > 20


def test_interventional_scores_on_a_partial_grid():
    ds = _Checkerboard()
    rng = np.random.default_rng(1)
    sizes = {"batch_size": 16, "num_train": 300, "num_eval": 200}
    assert metrics.beta_vae_score(ds, lambda x: x, rng, **sizes)["beta_vae"] > 0.95

    def factor_vae(encode):
        return metrics.factor_vae_score(ds, encode, rng, num_variance_estimate=500,
                                        **sizes)["factor_vae"]

    assert factor_vae(lambda x: x) > 0.95
    assert factor_vae(lambda x: x @ np.ones((3, 3))) < 0.7  # every latent mixes all factors


def test_interventional_scores_refuse_single_valued_factor():
    ds = _Checkerboard(constant_c=True)
    rng = np.random.default_rng(2)
    for fn in (metrics.beta_vae_score, metrics.factor_vae_score):
        with pytest.raises(MetricInputError, match=r"factor 'c' of checkerboard takes 1 value"):
            fn(ds, lambda x: x, rng, num_train=10, num_eval=10)


def test_metric_names_and_options_from_the_command_line():
    assert split_metric_names(["dci", "beta_vae_score", "factor_vae_score"]) == (
        ["dci"], ["beta_vae_score", "factor_vae_score"])
    assert split_metric_names(None) == (None, [])
    with pytest.raises(UserError, match="unknown metric 'beta_vae'.*beta_vae_score"):
        split_metric_names(["beta_vae"])
    with pytest.raises(UserError, match="scores a set of runs"):
        split_metric_names(["udr"])
    assert parse_options(["num_train=100", "importance=logistic", "x='a'"]) == {
        "num_train": 100, "importance": "logistic", "x": "a"}
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_options(["num_train"])


def test_cli_udr_needs_two_runs(tmp_path, capsys):
    from experiments.cli import main

    assert main(["evaluate", str(tmp_path), "--metrics", "udr"]) == 2
    assert "at least 2 run directories" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_evaluate_npz_run_with_interventional_scores_and_udr(npz400, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_config

    from disentangle import train as train_lib
    from experiments.cli import main

    runs = []
    for seed in (0, 1):
        config = tiny_config("beta_vae", steps=20, **{"data.name": f"npz:{npz400}",
                                                      "model.latent_dim": 4, "train.seed": seed})
        train_lib.train_and_evaluate(config, tmp_path / f"run{seed}", progress=False)
        runs.append(str(tmp_path / f"run{seed}"))
    with pytest.warns(UserWarning, match="stores 400 rows"):
        code = main(["evaluate", runs[0], "--num-samples", "2000", "--metrics", "mig",
                     "beta_vae_score", "factor_vae_score", "--option", "num_train=40",
                     "num_eval=40", "batch_size=8", "num_variance_estimate=200"])
    assert code == 0
    ev = json.loads((Path(runs[0]) / "eval.json").read_text())
    assert ev["num_samples"] == 400 and ev["num_samples_requested"] == 2000
    scores = ev["representations"]["mean"]
    assert 0 <= scores["beta_vae"] <= 1 and 0 <= scores["factor_vae"] <= 1 and "mig" in scores
    assert main(["evaluate", runs[0], "--metrics", "mig", "--option", "no_such=1"]) == 2
    assert "no_such" in capsys.readouterr().err
    out = tmp_path / "udr.json"
    assert main(["evaluate", *runs, "--metrics", "udr", "--num-samples", "300",
                 "--out", str(out)]) == 0
    udr = json.loads(out.read_text())
    assert len(udr["udr"]) == 2 and all(0 <= s <= 1 for s in udr["udr"])
    assert len(udr["kl"][0]) == 4


def test_generic_grid_has_full_factor_values():
    class Grid(GroundTruthData):
        factor_names, factor_sizes = ("a", "b"), (3, 1)

        def sample_observations_from_factors(self, factors, rng):
            return factors.astype(np.float32)

    with pytest.raises(MetricInputError, match="factor 'b'"):
        metrics.beta_vae_score(Grid(), lambda x: x, np.random.default_rng(0), num_train=5)
