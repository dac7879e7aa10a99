"""Linear traversals: ranges are data quantiles or codebook values; figures for 1 and 3 channels."""

import ml_collections
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from disentangle.methods import DataSpec, build_model
from disentangle.traverse import encode_means, linear_codes, linear_traversals
from disentangle.traverse.figures import PAD, SEED_GAP, save_traversal_figures
from disentangle.traverse.linear import latent_ranges


def _model(name, shape=(8, 8, 1), latent_dim=3, **extra):
    cfg = ml_collections.ConfigDict({"name": name, "latent_dim": latent_dim,
                                     "network": "mlp_small", "reconstruction": "bernoulli",
                                     "beta": 1.0, "values_per_latent": 5,
                                     "quantization_weight": 0.01, "commitment_weight": 0.01,
                                     **extra})
    return build_model(cfg, DataSpec(shape), nnx.Rngs(0))


def test_linear_codes_vary_one_latent_each():
    seeds = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], np.float32)
    values = np.array([[10, 11], [20, 21], [30, 31]], np.float32)
    z = linear_codes(seeds, values)
    assert z.shape == (2, 3, 2, 3)
    for s in range(2):
        for j in range(3):
            for t in range(2):
                expected = seeds[s].copy()
                expected[j] = values[j, t]
                np.testing.assert_array_equal(z[s, j, t], expected)


def test_vae_ranges_are_data_quantiles():
    model = _model("beta_vae")
    rng = np.random.default_rng(0)
    data = rng.random((300, 8, 8, 1)).astype(np.float32)
    seeds = data[:2]
    tr = linear_traversals(model, seeds, data, num_steps=5, quantiles=(0.1, 0.9))
    codes = encode_means(model, data)
    q = np.quantile(codes, np.linspace(0.1, 0.9, 5), axis=0).T  # [L, S]
    seed_codes = encode_means(model, seeds)
    for j in range(3):
        np.testing.assert_allclose(tr.latents[:, j, :, j], np.broadcast_to(q[j], (2, 5)),
                                   rtol=1e-5, atol=1e-6)
        others = [i for i in range(3) if i != j]
        np.testing.assert_allclose(tr.latents[:, j, :, others].transpose(1, 2, 0),
                                   np.broadcast_to(seed_codes[:, None, others], (2, 5, 2)),
                                   atol=1e-6)
    assert tr.images.shape == (2, 3, 5, 8, 8, 1)
    assert tr.images.min() >= 0.0 and tr.images.max() <= 1.0
    # Decoding is a function of the code: equal codes give equal images.
    np.testing.assert_allclose(tr.images[0, 0, 2], tr.images[0, 0, 2])


def test_qlae_ranges_are_its_sorted_codebook():
    model = _model("qlae", shape=(8, 8, 3))
    book = np.array([[0.3, -0.2, 0.9, 0.1, -0.7],
                     [5.0, 4.0, 3.0, 2.0, 1.0],
                     [0.0, 0.5, -0.5, 0.25, -0.25]], np.float32)
    model.codebook[...] = book
    np.testing.assert_array_equal(latent_ranges(model, None), np.sort(book, axis=1))
    seeds = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
    tr = linear_traversals(model, seeds, None)
    assert tr.images.shape == (2, 3, 5, 8, 8, 3)
    for j in range(3):
        np.testing.assert_allclose(tr.latents[0, j, :, j], np.sort(book[j]))


def test_bad_quantiles_are_refused():
    with pytest.raises(ValueError, match="quantiles"):
        latent_ranges(_model("ae"), np.zeros((10, 3)), 5, (0.9, 0.1))


@pytest.mark.parametrize("channels", [1, 3])
def test_figures_have_the_grid_layout(tmp_path, channels):
    seeds, rows, steps, h = 2, 3, 4, 8
    images = np.random.default_rng(0).random((seeds, rows, steps, h, h, channels))
    png, gif = save_traversal_figures(images, tmp_path / "traversal_x", ["a", "b", "c"])
    grid = Image.open(png)
    block_w = steps * h + (steps - 1) * PAD
    assert grid.size == (28 + seeds * block_w + (seeds - 1) * SEED_GAP,
                         rows * h + (rows - 1) * PAD)
    anim = Image.open(gif)
    assert anim.n_frames == 2 * steps - 2  # ping-pong
    # The first tile of the grid is the first image (grey images repeat to RGB).
    tile = np.asarray(grid.convert("RGB"))[:h, 28:28 + h]
    expected = np.round(np.clip(images[0, 0, 0], 0, 1) * 255)
    expected = np.repeat(expected, 3, -1) if channels == 1 else expected
    np.testing.assert_allclose(tile, expected, atol=1)


def test_linear_length_averages_the_ranges_of_latents_in_use():
    """Ranges 2, 4 and 0.1 (collapsed: below 10 % of 4): length (2 + 4) / 2 = 3."""
    from disentangle.traverse.linear import linear_length

    values = np.array([[-1.0, 0.0, 1.0], [3.0, 1.0, -1.0], [0.0, 0.05, 0.1]])
    assert linear_length(values) == pytest.approx(3.0)
    assert linear_length(values, min_share=0.0) == pytest.approx(6.1 / 3)
    from disentangle.traverse.linear import mean_length

    assert mean_length(np.array([2.0, 4.0, 0.1])) == pytest.approx(3.0)


def test_rows_are_named_with_the_factor_their_latent_carries_most(tmp_path):
    import json

    from disentangle.traverse.runner import factor_labels

    nmi = [[0.9, 0.0, 0.05], [0.1, 0.15, 0.3]]  # factors a, b x latents z0..z2
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"primary": "mean", "representations": {"mean": {"nmi": nmi}}}))
    assert factor_labels(["z0", "z1", "z2"], path, ("a", "b")) == ["z0 a", "z1", "z2 b"]
    assert factor_labels(["z2", "k0"], path, ("a", "b"), threshold=0.5) == ["z2", "k0"]
    assert factor_labels(["z0"], tmp_path / "missing.json", ("a", "b")) == ["z0"]
