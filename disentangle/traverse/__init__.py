"""Latent traversals: linear sweeps, potential flows (Song et al., ICML 2023), their scores.

- :mod:`disentangle.traverse.linear`: vary one latent over the data's range.
- :mod:`disentangle.methods.potential_flow.model`: K learned wave-equation potentials whose
  gradient flows move codes along distinct, consistent directions.
- :mod:`disentangle.traverse.score`: which factors change along each traversal, judged by
  the shared ground-truth factor classifier :mod:`disentangle.methods.factor_predictor.model`.
- :mod:`disentangle.traverse.figures`: grid PNGs and animated GIFs.
"""

from disentangle.traverse.common import Traversals, decode_images, encode_means
from disentangle.traverse.figures import save_traversal_figures
from disentangle.traverse.linear import latent_ranges, linear_codes, linear_traversals

__all__ = ["Traversals", "decode_images", "encode_means", "latent_ranges", "linear_codes",
           "linear_traversals", "save_traversal_figures"]
