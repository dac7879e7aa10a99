"""The hsu_style encoder/decoder pair (Hsu et al., 2023): shapes, instance norm, FiLM
conditioning, parameter count, layer kinds, and methods training on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from disentangle import train as train_lib
from disentangle.errors import ConfigError
from disentangle.nn import build_decoder, build_encoder
from disentangle.nn.style import InstanceNormConvEncoder, StyleDecoder, instance_norm
from disentangle.runs import load_run

TINY = (32, 32, 1)  # the smallest supported image: a 2x2 map after four stride-2 blocks


def _count(module: nnx.Module) -> int:
    return sum(v.size for v in jax.tree.leaves(nnx.state(module, nnx.Param)))


def _abstract(make):
    """The module ``make()`` builds, with shapes only (no initialisation compute)."""
    return nnx.eval_shape(make)


def _shape_of_call(module: nnx.Module, x) -> tuple[int, ...]:
    graphdef, state = nnx.split(module)
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x).shape


@pytest.mark.parametrize("shape", [(64, 64, 1), (32, 48, 3)])
def test_output_shapes(shape):
    """Shapes by abstract evaluation: four stride-2 blocks down to H/16 x W/16 and back up."""
    enc = _abstract(lambda: build_encoder("hsu_style", shape, 7, nnx.Rngs(0)))
    dec = _abstract(lambda: build_decoder("hsu_style", 7, shape, nnx.Rngs(1)))
    assert _shape_of_call(enc, jnp.zeros((2, *shape))) == (2, 7)
    assert _shape_of_call(dec, jnp.zeros((2, 7))) == (2, *shape)
    assert dec.input_map.shape == (shape[0] // 16, shape[1] // 16, 256)


@pytest.mark.parametrize("shape", [(60, 64, 1), (64, 64), (16, 16, 1)])
def test_unsupported_shapes_are_a_clear_error(shape):
    with pytest.raises(ConfigError, match=r"multiples of 16.*" + str(shape).replace("(", r"\(")
                       .replace(")", r"\)")):
        build_encoder("hsu_style", shape, 4, nnx.Rngs(0))
    with pytest.raises(ConfigError, match="hsu_style"):
        build_decoder("hsu_style", 4, shape, nnx.Rngs(0))


def test_parameter_count_is_the_architectures():
    """Encoder: sum k^2 C_in C_out (no conv bias) + 2 C per instance norm + dense 4096-256-256
    + head; decoder: mapping 10-256-256 + input map 4x4x256 + sum k^2 C_in C_out + FiLM
    256 -> 2C (+ bias) per block + the 3x3 output conv, for 64x64x1 and 10 latents."""
    k = [3, 3, 4] * 4
    enc_w = [32, 32, 32, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    dec_w = [256, 256, 256, 128, 128, 128, 64, 64, 64, 32, 32, 32]
    convs = sum(ki * ki * a * b for ki, a, b in zip(k, [1] + enc_w[:-1], enc_w))
    encoder = convs + 2 * sum(enc_w) + (4 * 4 * 256 * 256 + 256) + (256 * 256 + 256) + (
        256 * 10 + 10)
    deconvs = sum(ki * ki * a * b for ki, a, b in zip(k, [256] + dec_w[:-1], dec_w))
    decoder = ((10 * 256 + 256) + (256 * 256 + 256) + 4 * 4 * 256 + deconvs
               + sum(256 * 2 * c + 2 * c for c in dec_w) + 3 * 3 * 32 * 1)
    enc = _abstract(lambda: InstanceNormConvEncoder((64, 64, 1), 10, rngs=nnx.Rngs(0)))
    assert _count(enc) == encoder
    assert _count(_abstract(lambda: StyleDecoder(10, (64, 64, 1), rngs=nnx.Rngs(0)))) == decoder
    assert 3.6e6 < encoder < 3.8e6 and 3.9e6 < decoder < 4.1e6  # about 7.6M in all
    # Every encoder norm is instance norm: one group per channel, with a per-channel affine.
    assert all(n.num_groups == c and n.scale.shape == n.bias.shape == (c,)
               for n, c in zip(enc.norms, enc_w))


def test_instance_norm_is_per_sample_per_channel():
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (3, 5, 7, 4))
    x = x.at[1].multiply(10.0)  # samples on different scales stay separately standardised
    y = np.asarray(instance_norm(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-4)
    # flax's GroupNorm with one group per channel (the encoder's norm) is the same map.
    norm = nnx.GroupNorm(4, num_groups=4, epsilon=1e-6, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(norm(x), instance_norm(x), atol=1e-4)


def _identity_film(dec: StyleDecoder) -> None:
    """FiLM layers that output scale 1 and bias 0 whatever w is."""
    for film in dec.film:
        n = film.kernel.shape[1] // 2
        film.kernel[...] = jnp.zeros_like(film.kernel[...])
        film.bias[...] = jnp.concatenate([jnp.ones(n), jnp.zeros(n)])


@pytest.mark.slow
def test_film_carries_z_and_blocks_are_instance_normalised_before_it():
    dec = StyleDecoder(4, TINY, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(dec.input_map[...], np.float32(0.1))  # a Param, 0.1 at init
    assert isinstance(dec.input_map, nnx.Param)  # learned: see test_methods_train_on_it
    z1, z2 = jax.random.normal(jax.random.key(1), (2, 3, 4))
    assert float(jnp.abs(dec(z1) - dec(z2)).max()) > 1e-3  # z changes the image
    _identity_film(dec)  # cut the FiLM path: z no longer reaches the image
    h1, h2 = np.asarray(dec.features(z1)), np.asarray(dec.features(z2))
    np.testing.assert_allclose(h1, h2, atol=1e-6)
    # With scale 1 and bias 0, a block's output is its instance norm: per sample and
    # channel, mean 0 and variance 1 over space.
    assert h1.shape == (3, *TINY[:2], 32)
    np.testing.assert_allclose(h1.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(h1.var(axis=(1, 2)), 1.0, atol=1e-3)


@pytest.mark.slow
def test_phase_and_stock_layers_compute_the_same_network():
    """The CPU ('phase') and stock layers: same parameters, same map, same gradients."""
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1))

    def value_and_grads(kind):
        model = (InstanceNormConvEncoder((32, 32, 1), 3, rngs=nnx.Rngs(0), layers=kind),
                 StyleDecoder(3, (32, 32, 1), rngs=nnx.Rngs(1), layers=kind))
        graphdef, params = nnx.split(model)

        def loss(p):
            enc, dec = nnx.merge(graphdef, p)
            return jnp.mean(jnp.square(jax.nn.sigmoid(dec(enc(x))) - x))

        return jax.jit(jax.value_and_grad(loss))(params)

    (la, ga), (lb, gb) = value_and_grads("phase"), value_and_grads("stock")
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def _tiny_images(path):
    """An npz dataset of 32x32 squares: factors (x, y) in 0..3."""
    images, factors = [], []
    for i in range(4):
        for j in range(4):
            img = np.zeros(TINY, np.uint8)
            img[4 + 6 * i:10 + 6 * i, 4 + 6 * j:10 + 6 * j] = 255
            images.append(img)
            factors.append((i, j))
    np.savez(path, images=np.stack(images), factors=np.asarray(factors))
    return f"npz:{path}"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["qlae", "beta_vae"])
def test_methods_train_on_it(method, make_config, tmp_path):
    config = make_config(method, steps=2, **{"data.name": _tiny_images(tmp_path / "d.npz"),
                                             "model.network": "hsu_style",
                                             "train.batch_size": 4})
    train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    log = train_lib.read_log(tmp_path / "run")
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    decoder = load_run(tmp_path / "run").model.decoder
    assert isinstance(decoder, StyleDecoder)
    assert float(np.abs(np.asarray(decoder.input_map[...]) - 0.1).max()) > 0  # it trained
