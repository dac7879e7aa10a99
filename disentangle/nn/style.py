"""The encoder/decoder pair of Hsu et al. (NeurIPS 2023), registered as ``hsu_style``.

The QLAE paper's tables (QLAE and every baseline) come from this pair, not from the
disentanglement_lib conv64. Facts from the paper's appendix and the authors' public code:

Encoder ``[n, H, W, C] -> [n, out_features]``: 12 blocks ``conv -> instance norm (per-channel
affine) -> leaky ReLU(0.2)``, widths 32,32,32, 64,64,64, 128,128,128, 256,256,256,
kernels 3,3,4 repeated, strides 1,1,2 repeated, padding 1, no conv bias (the norm removes
it); flatten; dense 256, 256 (ReLU); a linear head.

Decoder ("style") ``[n, latent_dim] -> logits [n, H, W, C]``: an MLP ``w = ReLU(W_2
ReLU(W_1 z))`` (256, 256); a learned constant input map ``m [H/16, W/16, 256]`` initialised
to 0.1; 12 blocks with widths 256,256,256, 128,128,128, 64,64,64, 32,32,32, kernels 3,3,4,
strides 1,1,2, padding 1, each

    h = IN(leaky_relu(convT(h)))                 (instance norm, no affine, eps 1e-6)
    (a, b) = split(ReLU(A w + c))                (FiLM: per-channel scale a and bias b)
    h = a * h + b                                [n, H_l, W_l, C_l] * [n, 1, 1, C_l]

then a 3x3 conv (stride 1, no bias) to the logits. The ReLU on the FiLM output is the
authors' (their conditioning layer is a dense block with its default ReLU).

Padding 1 with kernel 3 / stride 1 keeps the size and with kernel 4 / stride 2 halves
(conv) or doubles (transposed conv) it; for even sizes that is flax's ``'SAME'`` padding,
so the layers are those of :func:`disentangle.backend.conv_layers` (the ``phase`` layers on
CPU, same parameters and map as the stock ones; 2.3-3.3x the stock layers' step rate,
benchmarks/network_step.py). Four stride-2 blocks take 64x64 to the 4x4
map and back (as in the authors' code, where the decoder's input map has the encoder's
last spatial shape), so H and W must be multiples of 16, at least 32
(:func:`check_image_shape`).

Weights use flax's default initialisers (lecun normal), not equinox's uniform ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle import backend
from disentangle.errors import ConfigError
from disentangle.nn.networks import NETWORKS

ENCODER_WIDTHS = (32, 32, 32, 64, 64, 64, 128, 128, 128, 256, 256, 256)
DECODER_WIDTHS = (256, 256, 256, 128, 128, 128, 64, 64, 64, 32, 32, 32)
KERNELS = (3, 3, 4) * 4
STRIDES = (1, 1, 2) * 4
DENSE = (256, 256)
INPUT_CHANNELS = 256  # channels of the decoder's constant input map
INPUT_VALUE = 0.1  # its initial value
LEAK = 0.2  # leaky ReLU slope
EPS = 1e-6  # instance norm epsilon
DOWNSAMPLING = 16  # 2 ** (number of stride-2 blocks)


def check_image_shape(observation_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(H, W, C)`` of ``[H, W, C]`` images with H and W multiples of 16 and at least 32;
    a ConfigError otherwise. (At 16 the innermost map is 1x1, where instance norm outputs
    zeros: the input map and the first blocks would carry nothing.)"""
    shape = tuple(observation_shape)
    if len(shape) != 3 or any(s < 2 * DOWNSAMPLING or s % DOWNSAMPLING for s in shape[:2]):
        raise ConfigError(
            f"model.network='hsu_style' takes [H, W, C] images with H and W multiples of "
            f"{DOWNSAMPLING}, at least {2 * DOWNSAMPLING} (four stride-2 blocks; 64x64 as in "
            f"the paper); the dataset's observations have shape {shape}. Use "
            "model.network='mlp' (any shape).")
    return shape


def instance_norm(x: jax.Array, eps: float = EPS) -> jax.Array:
    """Per-sample, per-channel standardisation over space, [n, H, W, C] -> same:
    ``(x - mean_hw x) / sqrt(var_hw x + eps)``."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(x - mean).mean(axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps)


class InstanceNormConvEncoder(nnx.Module):
    """[n, H, W, C] -> [n, out_features] (module docstring). ``layers``: 'phase' | 'stock'
    | None (the backend's, :func:`disentangle.backend.layer_kind`)."""

    def __init__(self, observation_shape: Sequence[int], out_features: int, *,
                 rngs: nnx.Rngs, layers: str | None = None):
        h, w, c = check_image_shape(observation_shape)
        conv, _ = backend.conv_layers(layers)
        chans = (c, *ENCODER_WIDTHS)
        self.convs = nnx.List([
            conv(chans[i], chans[i + 1], (k, k), strides=s, padding="SAME", use_bias=False,
                 rngs=rngs) for i, (k, s) in enumerate(zip(KERNELS, STRIDES))])
        # GroupNorm with one group per channel is instance norm (with a per-channel affine).
        self.norms = nnx.List([nnx.GroupNorm(n, num_groups=n, epsilon=EPS, rngs=rngs)
                               for n in ENCODER_WIDTHS])
        flat = (h // DOWNSAMPLING) * (w // DOWNSAMPLING) * ENCODER_WIDTHS[-1]
        sizes = (flat, *DENSE)
        self.dense = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.head = nnx.Linear(DENSE[-1], out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv, norm in zip(self.convs, self.norms):
            x = jax.nn.leaky_relu(norm(conv(x)), LEAK)
        x = x.reshape(x.shape[0], -1)
        for layer in self.dense:
            x = jax.nn.relu(layer(x))
        return self.head(x)


class StyleDecoder(nnx.Module):
    """[n, latent_dim] -> logits [n, H, W, C] (module docstring). ``layers`` as
    :class:`InstanceNormConvEncoder`."""

    def __init__(self, latent_dim: int, observation_shape: Sequence[int], *, rngs: nnx.Rngs,
                 layers: str | None = None):
        h, w, c = check_image_shape(observation_shape)
        conv, conv_transpose = backend.conv_layers(layers)
        sizes = (latent_dim, *DENSE)
        self.mapping = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.input_map = nnx.Param(jnp.full(
            (h // DOWNSAMPLING, w // DOWNSAMPLING, INPUT_CHANNELS), INPUT_VALUE, jnp.float32))
        chans = (INPUT_CHANNELS, *DECODER_WIDTHS)
        self.deconvs = nnx.List([
            conv_transpose(chans[i], chans[i + 1], (k, k), strides=(s, s), padding="SAME",
                           use_bias=False, rngs=rngs)
            for i, (k, s) in enumerate(zip(KERNELS, STRIDES))])
        self.film = nnx.List([nnx.Linear(DENSE[-1], 2 * n, rngs=rngs) for n in DECODER_WIDTHS])
        self.out = conv(DECODER_WIDTHS[-1], c, (3, 3), strides=1, padding="SAME",
                        use_bias=False, rngs=rngs)

    def style(self, z: jax.Array) -> jax.Array:
        """The style vector w = MLP(z): [n, latent_dim] -> [n, 256]."""
        for layer in self.mapping:
            z = jax.nn.relu(layer(z))
        return z

    def features(self, z: jax.Array) -> jax.Array:
        """The last block's output, [n, H, W, 32] (before the output conv)."""
        w = self.style(z)
        x = jnp.broadcast_to(self.input_map[...], (z.shape[0], *self.input_map.shape))
        for deconv, film in zip(self.deconvs, self.film):
            x = instance_norm(jax.nn.leaky_relu(deconv(x), LEAK))
            scale, bias = jnp.split(jax.nn.relu(film(w)), 2, axis=-1)  # [n, C_l] each
            x = x * scale[:, None, None, :] + bias[:, None, None, :]
        return x

    def __call__(self, z: jax.Array) -> jax.Array:
        return self.out(self.features(z))


NETWORKS.register("hsu_style")((
    lambda observation_shape, out_features, rngs: InstanceNormConvEncoder(
        observation_shape, out_features, rngs=rngs),
    lambda latent_dim, observation_shape, rngs: StyleDecoder(
        latent_dim, observation_shape, rngs=rngs),
))
