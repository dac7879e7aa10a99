"""Encoders, decoders and reconstruction losses shared by the methods."""

from disentangle.nn import conv1d, style  # noqa: F401  (register conv1d, hsu_style)
from disentangle.nn.conv64 import Conv64Decoder, Conv64Encoder
from disentangle.nn.losses import RECONSTRUCTION, reconstruction_loss
from disentangle.nn.mlp import MLP, MLPDecoder, MLPEncoder
from disentangle.nn.networks import NETWORKS, build_decoder, build_encoder

__all__ = ["Conv64Decoder", "Conv64Encoder", "MLP", "MLPDecoder", "MLPEncoder", "NETWORKS",
           "RECONSTRUCTION", "build_decoder", "build_encoder", "reconstruction_loss"]
