"""IRS and UDR: hand-computed values, invariances, noise floors, agreement with the plain
reference transcriptions of disentanglement_lib's definitions (metrics/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

import metrics
from metrics._common import MetricInputError
from metrics.reference import irs_reference, udr_reference

SIZES = (4, 6, 30)


def _factors(n=1500, seed=0):
    """Uniform factors int [n, 3] with SIZES values (30 > 20 exercises IRS's binning)."""
    return np.random.default_rng(seed).integers(0, SIZES, size=(n, len(SIZES)))


def _identity(f, noise=0.01, seed=1):
    """One latent per factor, scaled to [0, 1), plus Gaussian noise."""
    return f / np.asarray(SIZES) + noise * np.random.default_rng(seed).standard_normal(f.shape)


def _grid(*sizes):
    return np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(
        -1, len(sizes))


# ---------------------------------------------------------------- IRS


def test_irs_hand_computed():
    g = _grid(3, 3)
    # one latent per factor, no noise: conditioning on its factor fixes it, EMPIDA = 0
    assert metrics.irs(g, g, num_bins=None)["irs"] == 1.0
    # z = g1 + g2 on the full 3x3 grid: given g1 = v, z - E[z | v] takes -1, 0, 1; the
    # q-quantile of the sorted |.| = 0, 1, 1 (linear interpolation) is 2q for q <= 1/2 and 1
    # above, so EMPIDA = 1 at q = 1 and 0.5 at q = 1/4; max |z - E z| = 2.
    z = g.sum(axis=1, keepdims=True).astype(float)
    out = metrics.irs(z, g, diff_quantile=1.0, num_bins=None)
    assert out["irs"] == pytest.approx(1 - 1 / 2)
    np.testing.assert_allclose(out["irs_matrix"], [[0.5, 0.5]])
    assert metrics.irs(z, g, diff_quantile=0.25, num_bins=None)["irs"] == pytest.approx(0.75)
    # the weighted average: latent 0 = g1 (score 1, max deviation 1), latent 1 = g1 + g2
    # (score 0.5, max deviation 2) -> (1 * 1 + 0.5 * 2) / 3
    two = np.concatenate([g[:, :1].astype(float), z], axis=1)
    out = metrics.irs(two, g, diff_quantile=1.0, num_bins=None)
    assert out["irs"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(out["irs_parents"], [0, 0])


def test_irs_bins_factors_like_disentanglement_lib():
    # 20 equal-width bins over 0..39 put 2k and 2k + 1 together
    rng = np.random.default_rng(3)
    f = np.stack([rng.integers(0, 40, 2000), rng.integers(0, 3, 2000)], axis=1)
    z = f + 0.3 * rng.standard_normal(f.shape)
    halved = f.copy()
    halved[:, 0] //= 2
    assert metrics.irs(z, f)["irs"] == pytest.approx(
        metrics.irs(z, halved, num_bins=None)["irs"], abs=1e-12)
    assert metrics.irs(z, f)["irs"] != pytest.approx(metrics.irs(z, f, num_bins=None)["irs"])


def test_irs_identity_permutation_and_noise():
    f = _factors()
    z = _identity(f)
    base = metrics.irs(z, f)
    assert base["irs"] > 0.9 and base["irs_num_active"] == 3
    np.testing.assert_array_equal(base["irs_parents"], [0, 1, 2])
    perm = [2, 0, 1]
    moved = metrics.irs(z[:, perm], f)
    assert moved["irs"] == pytest.approx(base["irs"], abs=1e-12)
    np.testing.assert_allclose(moved["irs_per_latent"], base["irs_per_latent"][perm])
    # shifting latents and one common scale change nothing (per-latent scales re-weight)
    assert metrics.irs(3.0 * z - 7.0, f)["irs"] == pytest.approx(base["irs"], abs=1e-12)
    rotation = np.linalg.qr(np.random.default_rng(4).standard_normal((3, 3)))[0]
    assert metrics.irs(z @ rotation, f)["irs"] < base["irs"] - 0.3
    noise = np.random.default_rng(5).standard_normal((f.shape[0], 4))
    # IRS of noise is not 0: the 99 % quantile of |z - E z| within a group is about 2.6 sd,
    # the largest deviation over 1,500 samples about 3.3 sd, so IRS ~ 1 - 2.6 / 3.3
    assert 0.15 < metrics.irs(noise, f)["irs"] < 0.4


@pytest.mark.parametrize("case", ["identity", "mixed", "noise", "discrete", "binned"])
@pytest.mark.parametrize("num_bins", [20, None])
def test_irs_agrees_with_reference(case, num_bins):
    f = _factors(800, seed=int(num_bins is None))
    rng = np.random.default_rng(6)
    codes = {"identity": _identity(f, 0.05), "mixed": _identity(f) @ rng.standard_normal((3, 5)),
             "noise": rng.standard_normal((800, 4)), "discrete": f,
             "binned": np.round(4 * _identity(f, 0.1))}[case]
    for q in (0.99, 1.0, 0.5):
        ours = metrics.irs(codes, f, diff_quantile=q, num_bins=num_bins)
        ref = irs_reference(codes, f, diff_quantile=q, num_bins=num_bins)
        # measured: largest difference 2.2e-16 over these cases
        assert ours["irs"] == pytest.approx(ref["irs"], abs=1e-12)


def test_irs_degenerate_inputs():
    f = _factors(500)
    z = _identity(f)
    with_constant = np.concatenate([z, np.full((500, 1), 2.0)], axis=1)
    out = metrics.irs(with_constant, f)
    assert out["irs"] == pytest.approx(metrics.irs(z, f)["irs"], abs=1e-12)
    assert out["irs_num_active"] == 3 and out["irs_parents"][3] == -1
    assert any("constant" in w for w in out["warnings"])
    flat = metrics.irs(np.ones((500, 2)), f)
    assert flat["irs"] == 0.0 and flat["warnings"]
    with pytest.raises(MetricInputError, match="diff_quantile"):
        metrics.irs(z, f, diff_quantile=0.0)
    out = metrics.evaluate(z, f, names=["irs"])
    assert out["irs"] > 0.9 and out["irs_matrix"].shape == (3, 3)


# ---------------------------------------------------------------- UDR


def _latents(n=3000, dims=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dims))


def _relabel(z, perm, scale):
    """The same representation up to latent order, sign and scale."""
    return z[:, perm] * np.asarray(scale) + 5.0


def test_udr_same_representation_up_to_permutation_sign_scale():
    a = _latents()
    b = _relabel(a, [2, 0, 3, 1], [-1.0, 3.0, 0.2, -7.0])
    spear = metrics.udr([a, b])
    # |rho| = 1 on the matched pairs; the others are sample correlations of independent
    # latents (~0.015 each at n = 3000), so relative strength = 1 / (1 + sum of those)
    assert spear["udr"] == pytest.approx([1.0, 1.0], abs=0.06)
    assert spear["udr_pairwise"][0, 1] == pytest.approx(spear["udr_pairwise"][1, 0])
    # Lasso on standardised latents: the matched coefficient is shrunk to 1 - alpha and the
    # others are exactly 0, so every row and column scores (1 - alpha)^2 / (1 - alpha)
    lasso = metrics.udr([a, b], correlation="lasso")
    np.testing.assert_allclose(lasso["udr"], [0.9, 0.9], atol=1e-9)
    np.testing.assert_allclose(metrics.udr([a, b], correlation="lasso", lasso_alpha=0.3)["udr"],
                               [0.7, 0.7], atol=1e-9)


def test_udr_rotation_analytic_and_permutation_invariance():
    a = _latents(20_000, seed=1)
    b = a.copy()
    b[:, :2] = a[:, :2] @ np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2)  # 45 degrees
    # Spearman of a bivariate normal with Pearson r: (6 / pi) arcsin(r / 2); the two rotated
    # latents each score rho^2 / (2 rho + 2 e), the two kept ones 1 / (1 + 3 e), where
    # e = sqrt(2 / (pi n)) is the expected |sample correlation| of independent latents
    rho = 6 / np.pi * np.arcsin(np.sqrt(0.5) / 2)
    e = np.sqrt(2 / (np.pi * a.shape[0]))
    expected = (2 / (1 + 3 * e) + 2 * rho**2 / (2 * rho + 2 * e)) / 4
    out = metrics.udr([a, b])
    assert out["udr"][0] == pytest.approx(expected, abs=0.006)
    moved = metrics.udr([a[:, [3, 1, 0, 2]], b[:, [1, 2, 3, 0]]])
    np.testing.assert_allclose(moved["udr_pairwise"], out["udr_pairwise"], atol=1e-12)


def test_udr_noise_and_median_over_pairs():
    a = _latents(seed=2)
    b = _relabel(a, [1, 0, 2, 3], [1, 1, 1, 1]) + 0.1 * _latents(seed=3)
    c = _latents(seed=4)  # unrelated run
    out = metrics.udr([a, b, c])
    pw = out["udr_pairwise"]
    assert pw[0, 2] < 0.05 and pw[2, 0] < 0.05 and pw[0, 1] > 0.9
    np.testing.assert_allclose(out["udr"], [np.median([pw[1, 0], pw[2, 0]]),
                                            np.median([pw[0, 1], pw[2, 1]]),
                                            np.median([pw[0, 2], pw[1, 2]])])
    assert np.argmin(out["udr"]) == 2
    assert metrics.udr([a, c], correlation="lasso")["udr"].tolist() == [0.0, 0.0]


def test_udr_keeps_only_informative_latents():
    a, b = _latents(seed=5), _latents(seed=5)[:, [1, 0, 2, 3]]
    rng = np.random.default_rng(6)
    a_extra = np.concatenate([a, rng.standard_normal((3000, 1))], axis=1)
    b_extra = np.concatenate([b, rng.standard_normal((3000, 2))], axis=1)
    kl = [np.array([1.0, 2, 3, 4, 0.001]), np.array([1.0, 2, 3, 4, 0.005, 0.0])]
    for corr in ("spearman", "lasso"):
        plain = metrics.udr([a, b], correlation=corr)["udr"]
        filtered = metrics.udr([a_extra, b_extra], kl=kl, correlation=corr)
        np.testing.assert_allclose(filtered["udr"], plain, atol=1e-12)
        masks = [k > 0.01 for k in kl]
        np.testing.assert_allclose(
            metrics.udr([a_extra, b_extra], informative=masks, correlation=corr)["udr"], plain,
            atol=1e-12)
    assert metrics.udr([a_extra, b_extra])["udr"][0] < plain[0] - 0.1


@pytest.mark.parametrize("correlation", ["spearman", "lasso"])
def test_udr_agrees_with_reference(correlation):
    f = _factors(600, seed=2)
    rng = np.random.default_rng(7)
    z = _identity(f, 0.05)
    runs = [z, _relabel(z, [1, 2, 0], [1, -2, 3]) + 0.2 * rng.standard_normal(z.shape),
            z @ rng.standard_normal((3, 4)), rng.standard_normal((600, 3)),
            np.round(3 * z[:, [0, 1]])]  # five runs, 3-4 latents, ties in the last
    kl = [np.array([1, 1, 1.0]), np.array([1, 0.001, 1.0]), np.array([1, 1, 0.5, 1.0]),
          np.array([0.5, 1, 1.0]), np.array([1.0, 1])]
    ours = metrics.udr(runs, kl=kl, correlation=correlation)
    ref = udr_reference(runs, kl=kl, correlation=correlation)
    # measured: largest pairwise difference 4.4e-16 (Spearman), 2.7e-11 (Lasso)
    np.testing.assert_allclose(ours["udr_pairwise"], ref["udr_pairwise"], atol=1e-8)
    np.testing.assert_allclose(ours["udr"], ref["udr"], atol=1e-8)


def test_udr_bad_inputs():
    a = _latents(100)
    with pytest.raises(MetricInputError, match="at least 2 runs"):
        metrics.udr([a])
    with pytest.raises(MetricInputError, match="same inputs"):
        metrics.udr([a, a[:50]])
    with pytest.raises(MetricInputError, match=r"kl\[1\] has shape"):
        metrics.udr([a, a], kl=[np.ones(4), np.ones(3)])
    with pytest.raises(MetricInputError, match="accepted: 'spearman', 'lasso'"):
        metrics.udr([a, a], correlation="pearson")
    out = metrics.udr([a, a], kl=[np.zeros(4), np.ones(4)])
    assert out["udr"].tolist() == [0.0, 0.0] and "run 0" in out["warnings"][0]
    assert metrics.RUN_SET_METRICS.get("udr") is metrics.udr
