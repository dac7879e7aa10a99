"""The disentanglement_lib convolutional architecture for 64x64xC images.

Locatello et al. (2019), Table 1. Encoder: conv 32 4x4 s2 -> 32 4x4 s2 -> 64 2x2 s2 ->
64 2x2 s2 (ReLU) -> FC 256 -> linear head of ``out_features``. Decoder: FC 256 -> FC 1024
-> reshape 4x4x64 -> deconv 64, 32, 32 (4x4, s2, ReLU) -> deconv C (4x4, s2) logits.

The deconvolutions are :class:`~disentangle.nn.subpixel.SubPixelConvTranspose`: exactly
flax's 'SAME' transposed convolution with the same ``kernel [4, 4, in, out]`` and ``bias``
parameters, computed by phases. The encoder's strided convolutions are
:class:`~disentangle.nn.subpixel.PhaseGradConv`: ``nnx.Conv`` whose input gradient (a
transposed convolution) is computed by phases too and whose kernel gradient is one
space-to-depth matmul where that is faster. With the training steps' compiler options
about 3.5x faster training on CPU than the plain layers (benchmarks/train_step.py,
docs/performance.md).
``deconv_method='lax'`` gives the plain ``lax.conv_transpose`` formulation.
"""

from __future__ import annotations

import jax
from flax import nnx

from disentangle.nn.subpixel import PhaseGradConv, SubPixelConvTranspose
from disentangle.nn.trunk import ConvTrunkEncoder


class Conv64Encoder(ConvTrunkEncoder):
    """[n, 64, 64, C] -> [n, out_features]."""

    def __init__(self, in_channels: int, out_features: int, *, rngs: nnx.Rngs):
        chans = (in_channels, 32, 32, 64, 64)
        kernels = (4, 4, 2, 2)
        convs = [PhaseGradConv(chans[i], chans[i + 1], (kernels[i], kernels[i]), strides=2,
                               padding="SAME", rngs=rngs) for i in range(4)]
        super().__init__(convs, 4 * 4 * 64, out_features, rngs=rngs)


class Conv64Decoder(nnx.Module):
    """[n, latent_dim] -> logits [n, 64, 64, C]."""

    def __init__(self, latent_dim: int, out_channels: int, *, rngs: nnx.Rngs,
                 deconv_method: str = "auto"):
        self.fc1 = nnx.Linear(latent_dim, 256, rngs=rngs)
        self.fc2 = nnx.Linear(256, 4 * 4 * 64, rngs=rngs)
        chans = (64, 64, 32, 32, out_channels)
        self.deconvs = nnx.List([
            SubPixelConvTranspose(chans[i], chans[i + 1], (4, 4), strides=(2, 2),
                                  padding="SAME", rngs=rngs, method=deconv_method)
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
