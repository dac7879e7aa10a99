"""The disentanglement_lib convolutional architecture for 64x64xC images.

Locatello et al. (2019), Table 1. Encoder: conv 32 4x4 s2 -> 32 4x4 s2 -> 64 2x2 s2 ->
64 2x2 s2 (ReLU) -> FC 256 -> linear head of ``out_features``. Decoder: FC 256 -> FC 1024
-> reshape 4x4x64 -> deconv 64, 32, 32 (4x4, s2, ReLU) -> deconv C (4x4, s2) logits.

The layers are ``nnx.Conv`` / ``nnx.ConvTranspose`` ('SAME' padding) of the kind
:func:`disentangle.backend.layer_kind` picks: on CPU the ``phase`` layers
(:class:`~disentangle.nn.subpixel.PhaseGradConv`, whose input gradient and kernel gradient
are computed by phases / one matmul, and
:class:`~disentangle.nn.subpixel.SubPixelConvTranspose`, the transposed convolution by
phases; 4.8x the stock layers' train-step rate on 2 cores, docs/performance.md),
elsewhere the stock flax layers. Both kinds have the same parameters and compute the same map, so
checkpoints are interchangeable.
"""

from __future__ import annotations

import jax
from flax import nnx

from disentangle import backend
from disentangle.nn.trunk import ConvTrunkEncoder


class Conv64Encoder(ConvTrunkEncoder):
    """[n, 64, 64, C] -> [n, out_features]. ``layers``: 'phase' | 'stock' | None (the
    backend's, :func:`disentangle.backend.layer_kind`)."""

    def __init__(self, in_channels: int, out_features: int, *, rngs: nnx.Rngs,
                 layers: str | None = None):
        conv, _ = backend.conv_layers(layers)
        chans = (in_channels, 32, 32, 64, 64)
        kernels = (4, 4, 2, 2)
        convs = [conv(chans[i], chans[i + 1], (kernels[i], kernels[i]), strides=2,
                      padding="SAME", rngs=rngs) for i in range(4)]
        super().__init__(convs, 4 * 4 * 64, out_features, rngs=rngs)


class Conv64Decoder(nnx.Module):
    """[n, latent_dim] -> logits [n, 64, 64, C]. ``layers`` as :class:`Conv64Encoder`."""

    def __init__(self, latent_dim: int, out_channels: int, *, rngs: nnx.Rngs,
                 layers: str | None = None):
        _, conv_transpose = backend.conv_layers(layers)
        self.fc1 = nnx.Linear(latent_dim, 256, rngs=rngs)
        self.fc2 = nnx.Linear(256, 4 * 4 * 64, rngs=rngs)
        chans = (64, 64, 32, 32, out_channels)
        self.deconvs = nnx.List([
            conv_transpose(chans[i], chans[i + 1], (4, 4), strides=(2, 2), padding="SAME",
                           rngs=rngs)
            for i in range(4)
        ])

    def __call__(self, z: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.fc1(z))
        h = jax.nn.relu(self.fc2(h)).reshape(z.shape[0], 4, 4, 64)
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            if i < len(self.deconvs) - 1:
                h = jax.nn.relu(h)
        return h
