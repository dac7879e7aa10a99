"""SCAN (Higgins et al., 2018): closed-form loss, prior-like empty symbols, recombination,
and training through the one trainer (two stages over a frozen visual run, exact resume)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from disentangle import train as train_lib
from disentangle.config import base_config, from_json, load_config
from disentangle.methods.base import Method, Representation
from disentangle.methods.scan.model import (
    OPERATORS,
    SCAN,
    LabelMask,
    SymbolVocabulary,
    scan_model_config,
    scan_objective,
    set_operation,
)
from disentangle.runs import load_run

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class _Grid:
    """A tiny factor grid standing in for a dataset (only names and sizes are used)."""

    name = "grid"
    factor_names = ("a", "b")
    factor_sizes = (3, 4)


def _np_kl(mq, lq, mp, lp):
    return 0.5 * (lp - lq + (np.exp(lq) + (mq - mp) ** 2) / np.exp(lp) - 1.0)


def test_scan_loss_equals_closed_form():
    rng = np.random.default_rng(0)
    n, u, d = 5, 7, 3
    y = (rng.random((n, u)) < 0.4).astype(np.float32)
    logits = rng.normal(size=(n, u)).astype(np.float32) * 2
    my, ly, mx, lx = (rng.normal(size=(n, d)).astype(np.float32) * 0.7 for _ in range(4))
    loss, terms = scan_objective(jnp.asarray(y), jnp.asarray(logits), jnp.asarray(my),
                                 jnp.asarray(ly), jnp.asarray(mx), jnp.asarray(lx),
                                 beta=1.0, lam=10.0)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    rec = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(1)
    kl_prior = (0.5 * (my**2 + np.exp(ly) - 1 - ly)).sum(1)
    kl_vis = _np_kl(mx, lx, my, ly).sum(1)  # KL(q(z_x|x) || q(z_y|y)), visual first
    expected = np.mean(rec + 1.0 * kl_prior + 10.0 * kl_vis)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(terms["kl_visual"]), kl_vis.mean(), rtol=1e-5)
    # The direction matters: the reverse KL gives a different value on these Gaussians.
    assert abs(_np_kl(my, ly, mx, lx).sum(1).mean() - kl_vis.mean()) > 0.1
    # Monte-Carlo check of the visual KL direction on one dimension.
    z = mx[0, 0] + np.exp(0.5 * lx[0, 0]) * rng.normal(size=400_000)
    log_q = lambda z, m, lv: -0.5 * (np.log(2 * np.pi) + lv + (z - m) ** 2 / np.exp(lv))
    mc = np.mean(log_q(z, mx[0, 0], lx[0, 0]) - log_q(z, my[0, 0], ly[0, 0]))
    np.testing.assert_allclose(mc, _np_kl(mx[0, 0], lx[0, 0], my[0, 0], ly[0, 0]), atol=0.02)


def test_vocabulary_khot_and_bins():
    vocab = SymbolVocabulary.from_dataset(_Grid(), bins={"b": 2})
    assert vocab.bins == (3, 2) and vocab.num_units == 5
    factors = np.array([[2, 0], [1, 3], [0, 2]])
    values = vocab.values(factors)
    np.testing.assert_array_equal(values, [[2, 0], [1, 1], [0, 1]])
    y = vocab.khot(values, np.array([[True, True], [False, True], [False, False]]))
    np.testing.assert_array_equal(y, [[0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(vocab.predict(y[:1]), [[2, 0]])
    y1 = np.array([[1, 0, 0, 1, 0.0]] * 3)
    y2 = np.array([[1, 0, 0, 0, 1.0]] * 3)
    out = set_operation(y1, y2, np.arange(3))
    np.testing.assert_array_equal(out, [[1, 0, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 1, 0]])


class KnownVisual(Method):
    """A visual model with known posteriors on observations [n, 1, 1, 4] that store
    (a, b, u1, u2) as bytes: dims 0, 1 code factors a, b (standardised), dims 2, 3 are
    nuisance dimensions (u uniform on 0..255, standardised); all posteriors tight (var 0.01)."""

    latent_dim = 4

    def encode(self, x):
        v = x[:, 0, 0, :] * 255.0
        mean = jnp.stack([(v[:, 0] - 1.0) / np.sqrt(2 / 3), (v[:, 1] - 1.5) / np.sqrt(1.25),
                          (v[:, 2] - 127.5) / 73.9, (v[:, 3] - 127.5) / 73.9], axis=1)
        return Representation(mean, jnp.full_like(mean, np.log(0.01)))

    def decode(self, z):
        return z


def _known_visual_data(path: Path, n: int, rng: np.random.Generator) -> str:
    """An ``npz:`` dataset of n rows for :class:`KnownVisual`; returns its dataset name."""
    factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], axis=1)
    images = np.concatenate([factors, rng.integers(0, 256, (n, 2))], axis=1).astype(np.uint8)
    np.savez(path, images=images[:, None, None, :], factors=factors,
             factor_names=np.array(["a", "b"]))
    return f"npz:{path}"


class _KnownRun:
    model = KnownVisual()

    class dataset:  # noqa: N801  (stands for a run's dataset: only the shape is read)
        observation_shape = (1, 1, 4)


def _synthetic_visual(n: int, rng: np.random.Generator):
    """Factors int [n, 2] and the visual means [n, 4] KnownVisual gives their observations."""
    factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], axis=1)
    u = rng.integers(0, 256, (n, 2))
    x = np.concatenate([factors, u], axis=1)[:, None, None, :] / 255.0
    return factors, np.asarray(KnownVisual().encode(jnp.asarray(x, jnp.float32)).mean)


@pytest.fixture(scope="module")
def trained_scan(tmp_path_factory):
    """SCAN (1,500 steps) then the recombiner (2,000 steps), one run of the one trainer on
    a known visual model (``load_run`` of its run dir patched to return it)."""
    tmp = tmp_path_factory.mktemp("scan_known")
    (tmp / "visual").mkdir()
    (tmp / "visual" / "config.json").write_text("{}")
    config = base_config("scan", _known_visual_data(tmp / "grid.npz", 4000,
                                                    np.random.default_rng(0)))
    config.model = scan_model_config()
    config.model.update({"visual_run": str(tmp / "visual"), "scan_steps": 1500,
                         "hidden": (64, 64)})
    config.train.update({"steps": 3500, "batch_size": 128, "learning_rate": 3e-3,
                         "log_every": 500, "checkpoint_every": 3500})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("disentangle.runs.load_run",
                   lambda path, load=load_run: _KnownRun if Path(path) == tmp / "visual"
                   else load(path))
        train_lib.train_and_evaluate(config, tmp / "scan", progress=False)
        run = load_run(tmp / "scan")
    return run.model, run.model.vocab, run.log()


@pytest.mark.slow  # trains 3,500 steps (~15 s CPU)
def test_training_logs_both_stages(trained_scan):
    _, _, log = trained_scan
    scan_rows = [r for r in log if r["step"] <= 1500]
    rec_rows = [r for r in log if r["step"] > 1500]
    assert all("scan_loss" in r and "kl_visual" in r and "kl_and" not in r for r in scan_rows)
    assert all("recombination_loss" in r and "kl_and" in r for r in rec_rows)
    assert rec_rows[-1]["recombination_loss"] < rec_rows[0]["recombination_loss"]
    assert np.isfinite(scan_rows[-1]["loss"])


@pytest.mark.slow  # trains 3,500 steps (~15 s CPU)
def test_empty_symbol_decodes_to_prior(trained_scan):
    scan, vocab, _ = trained_scan
    rep = scan.concept(jnp.zeros((1, vocab.num_units)))
    kl = np.asarray(0.5 * (rep.mean**2 + jnp.exp(rep.logvar) - 1 - rep.logvar))[0]
    assert kl.sum() < 0.15, kl  # every dimension near N(0, 1)
    # A symbol naming factor a keeps dim 0 tight at a's value and the others prior-like.
    y = vocab.khot(np.array([[2, 0]]), np.array([[True, False]]))
    rep = scan.concept(jnp.asarray(y))
    var = np.exp(np.asarray(rep.logvar))[0]
    np.testing.assert_allclose(float(rep.mean[0, 0]), 1.2247, atol=0.15)
    assert var[0] < 0.1 and np.all(np.abs(var[1:] - 1.0) < 0.35), var
    # image -> symbol: the decoder names both factors of a visual latent correctly.
    f_test, m_test = _synthetic_visual(300, np.random.default_rng(1))
    pred = vocab.predict(np.asarray(scan.symbol_probs(jnp.asarray(m_test))))
    assert np.mean(pred == vocab.values(f_test)) > 0.95


@pytest.mark.slow  # trains 3,500 steps (~15 s CPU)
def test_recombination_matches_set_operations(trained_scan):
    scan, vocab, _ = trained_scan
    # Every combination of full symbols (a=i, b=j) with (a=i', b=j') and each operator.
    vals = np.array([[i, j] for i in range(3) for j in range(4)])
    full = vocab.khot(vals, np.ones_like(vals, bool))
    ii, jj = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    y1, y2 = full[ii.ravel()], full[jj.ravel()]
    a_only = vocab.khot(vals, np.array([[True, False]] * 12))
    b_only = vocab.khot(vals, np.array([[False, True]] * 12))
    cases = {
        0: (a_only[ii.ravel()], b_only[jj.ravel()]),  # AND of two single-factor symbols
        1: (y1, y2),  # IN COMMON of two full symbols
        2: (y1, y2),  # IGNORE
    }
    kl = lambda q, p: np.asarray(0.5 * (p.logvar - q.logvar + (
        jnp.exp(q.logvar) + (q.mean - p.mean) ** 2) / jnp.exp(p.logvar) - 1).sum(-1))
    for op, (u, v) in cases.items():
        opv = np.full(len(u), op)
        target = set_operation(u, v, opv)
        named = vocab.named(target)
        out = scan.recombine(jnp.asarray(u), jnp.asarray(v), jnp.asarray(opv))
        # The recombined concept is tight exactly on the dimensions of the named factors
        # (dims 0, 1 code factors a, b) and decodes to the named values there.
        tight = np.exp(np.asarray(out.logvar))[:, :2] < 0.3
        pred = vocab.predict(np.asarray(scan.symbol_probs(out.mean)))
        right_value = np.where(named, pred == vocab.predict(target), True)
        match = np.all(tight == named, axis=1) & np.all(right_value, axis=1)
        assert match.mean() > 0.9, (OPERATORS[op], match.mean())
        # The recombined posterior is close to the target's posterior and far from the
        # posterior of the result of another operator (where that result differs).
        kl_target = kl(out, scan.concept(jnp.asarray(target)))
        wrong = set_operation(u, v, np.full(len(u), (op + 1) % 3))
        differs = np.any(wrong != target, axis=1)
        kl_wrong = kl(out, scan.concept(jnp.asarray(wrong)))
        assert np.median(kl_target) < 0.5, (OPERATORS[op], np.median(kl_target))
        assert np.median(kl_wrong[differs]) > 4 * np.median(kl_target), OPERATORS[op]


def test_sparse_labels_are_never_named():
    """LabelMask: availability per (group, factor) is deterministic, about ``fraction`` of
    the groups, and the symbols SCAN trains on never name an unavailable label."""
    vocab = SymbolVocabulary.from_dataset(_Grid())
    mask = LabelMask(sparse=(0,), group_column=2, fraction=0.3, seed=5)
    groups = np.arange(2000)
    avail = np.asarray(mask.available_for_groups(groups, 2))
    assert avail[:, 1].all() and abs(avail[:, 0].mean() - 0.3) < 0.04
    np.testing.assert_array_equal(avail, np.asarray(mask.available_for_groups(groups, 2)))
    assert not np.array_equal(avail, np.asarray(LabelMask((0,), 2, 0.3, seed=6)
                                                .available_for_groups(groups, 2)))
    scan = SCAN(KnownVisual(), vocab, mask, scan_steps=1, p_name=1.0, rngs=nnx.Rngs(0))
    factors = np.stack([np.full(2000, 2), np.full(2000, 1), groups], axis=1)
    y = np.asarray(scan.training_symbols(jnp.asarray(factors), jax.random.key(0)))
    np.testing.assert_array_equal(vocab.named(y)[:, 0], avail[:, 0])  # p_name = 1
    np.testing.assert_array_equal(y[avail[:, 0]][:, :3], [[0, 0, 1]] * avail[:, 0].sum())
    np.testing.assert_array_equal(y[:, 3:], [[0, 1, 0, 0]] * 2000)  # b always available


# ----------------------------------------------------------------------------- one trainer
def _tiny_visual(tmp: Path) -> Path:
    config = load_config(CONFIGS / "beta_vae_mlp_dsprites.py", [
        "train.steps=4", "train.checkpoint_every=4", "train.batch_size=8",
        "model.latent_dim=4"])
    return train_lib.train_and_evaluate(config, tmp / "bvae", progress=False)


def _tiny_scan(visual: Path, steps: int):
    return load_config(CONFIGS / "scan_dsprites.py", [
        f"model.visual_run={visual}", "model.scan_steps=3", f"train.steps={steps}",
        "train.checkpoint_every=2", "train.log_every=1", "train.batch_size=8",
        "model.hidden=(16,16)", "model.recombiner_hidden=8"])


@pytest.mark.slow
def test_two_stage_run_resumes_exactly_and_leaves_the_visual_model_alone(tmp_path):
    """A tiny beta-VAE run, then SCAN on it for 3 steps and the recombiner for 3 (through
    train_and_evaluate): a run stopped at step 4 and extended to 6 logs the same losses as
    the uninterrupted run, bit for bit, across the stage boundary; the visual parameters
    equal the beta-VAE run's; both trained groups moved."""
    visual = _tiny_visual(tmp_path)
    full = train_lib.train_and_evaluate(_tiny_scan(visual, 6), tmp_path / "full",
                                        progress=False)
    part = train_lib.train_and_evaluate(_tiny_scan(visual, 4), tmp_path / "part",
                                        progress=False)
    train_lib.train_and_evaluate(_tiny_scan(visual, 6), part, progress=False)
    log_full, log_part = train_lib.read_log(full), train_lib.read_log(part)
    assert [r["step"] for r in log_full] == [1, 2, 3, 4, 5, 6]
    assert [("scan_loss" in r, "recombination_loss" in r) for r in log_full] == \
        [(True, False)] * 3 + [(False, True)] * 3
    for a, b in zip(log_full, log_part, strict=True):
        assert {k: v for k, v in a.items() if k not in ("time", "images_per_sec")} == \
            {k: v for k, v in b.items() if k not in ("time", "images_per_sec")}

    run, vae = load_run(full), load_run(visual)
    for a, b in zip(jax.tree.leaves(nnx.state(run.model.visual, nnx.Param)),
                    jax.tree.leaves(nnx.state(vae.model, nnx.Param)), strict=True):
        np.testing.assert_array_equal(a, b)
    x = vae.dataset.sample(4, np.random.default_rng(0))[1]
    np.testing.assert_array_equal(run.model.encode(jnp.asarray(x)).mean,
                                  vae.model.encode(jnp.asarray(x)).mean)
    fresh = train_lib.setup(from_json((full / "config.json").read_text())).params
    for group in ("scan", "recombiner"):
        moved = [not np.array_equal(a, b) for a, b in zip(
            jax.tree.leaves(fresh[group]), jax.tree.leaves(nnx.state(
                run.model, run.model.param_groups()[group])), strict=True)]
        assert any(moved), group


def test_config_errors_name_the_key(tmp_path):
    from disentangle.errors import ConfigError

    config = load_config(CONFIGS / "scan_dsprites.py", [f"model.visual_run={tmp_path}"])
    with pytest.raises(ConfigError, match="model.visual_run"):
        train_lib.setup(config)
    with pytest.raises(ConfigError, match="model.symbols factor 'colour'.*accepted: a, b"):
        SymbolVocabulary.from_names(("a", "b"), (3, 4), ("a", "colour"), where="model.symbols")


def test_symbol_to_image_scores_on_a_known_decoder():
    """A decoder/predictor pair that reads factor a off dim 0 exactly: a tight concept at
    a=2 scores accuracy 1; a prior-broad dimension for factor b gives diversity near 1."""
    import jax

    from disentangle.methods.scan.evaluation import (
        concept_to_observation_scores,
        normalised_entropy,
    )

    np.testing.assert_allclose(normalised_entropy(np.array([[0, 1, 2, 3], [1, 1, 1, 1]]), 4),
                               [1.0, 0.0])
    vocab = SymbolVocabulary.from_dataset(_Grid())
    centres = [np.linspace(-1.22, 1.22, 3), np.linspace(-1.34, 1.34, 4)]

    def predict(z):  # nearest value centre of each dimension
        return jnp.stack([jnp.argmin(jnp.abs(z[:, k, None] - jnp.asarray(c)), axis=1)
                          for k, c in enumerate(centres)], axis=1)

    mean = np.array([[1.22, 0.0]], np.float32)
    logvar = np.array([[np.log(1e-4), 0.0]], np.float32)
    out = concept_to_observation_scores(mean, logvar, np.array([[True, False]]),
                                        np.array([[2, 0]]), vocab, lambda z: z, predict,
                                        num_samples=400, key=jax.random.key(0))
    assert out["accuracy"]["a"] == 1.0 and np.isnan(out["accuracy"]["b"])
    assert out["diversity"]["b"] > 0.85 and np.isnan(out["diversity"]["a"])


def test_symbol_value_predictor_bins_the_factor_predictor_output():
    """SCAN's judge is the shared factor predictor: its full-grid prediction is binned into
    the vocabulary (factor b: 4 values -> 2 bins: 0,1 -> 0 and 2,3 -> 1; a kept as is)."""
    from disentangle.methods.scan.evaluation import symbol_value_predictor

    class _Stub:  # reads the factors off the 'image' itself
        def predict(self, images):
            return np.asarray(images, np.int64)

    vocab = SymbolVocabulary.from_dataset(_Grid(), bins={"b": 2})
    predict = symbol_value_predictor(_Stub(), vocab)
    factors = np.array([[0, 0], [1, 1], [2, 2], [2, 3]])
    np.testing.assert_array_equal(predict(factors), [[0, 0], [1, 0], [2, 1], [2, 1]])
