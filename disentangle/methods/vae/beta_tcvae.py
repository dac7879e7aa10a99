"""beta-TCVAE (Chen et al., NeurIPS 2018) with minibatch-weighted sampling.

    loss = E[-log p(x|z)] + KL + (beta - 1) * TC

which equals recon + I(x;z) + beta * TC + dimKL with the MWS estimates of
:func:`disentangle.methods.gaussian.mws_decomposition` (disentanglement_lib's form uses the
analytic KL for the first term). ``beta`` is the TC weight; N is the dataset size.
"""

from __future__ import annotations

from disentangle.methods.base import register_model
from disentangle.methods.gaussian import batch_kl, mws_decomposition
from disentangle.methods.vae.beta_vae import BetaVAE


@register_model("beta_tcvae")
class BetaTCVAE(BetaVAE):
    def regularizer(self, z, rep, batch):
        kl = batch_kl(rep.mean, rep.logvar)
        parts = mws_decomposition(z, rep.mean, rep.logvar, max(self.dataset_size, z.shape[0]))
        reg = kl + (self.beta - 1.0) * parts["tc"]
        return reg, {"kl": kl, "tc": parts["tc"], "mi": parts["mi"],
                     "dimwise_kl": parts["dimwise_kl"]}
