"""Diagonal-Gaussian densities, KL terms and the minibatch-weighted-sampling decomposition.

Chen et al. (2018), "Isolating Sources of Disentanglement in VAEs": with
q(z) = 1/N sum_n q(z|x_n), the average KL splits into

    E_x KL(q(z|x) || p(z)) = I(x; z) + TC(z) + sum_j KL(q(z_j) || p(z_j))
    I(x; z) = E[log q(z|x) - log q(z)]
    TC(z)   = E[log q(z) - sum_j log q(z_j)]
    dimKL   = E[sum_j log q(z_j) - log p(z)]

and minibatch-weighted sampling (MWS) estimates log q(z_i) from a batch of M as
logsumexp_m log q(z_i | x_m) - log(N M). The three estimates add up to the Monte-Carlo
KL estimate E[log q(z|x) - log p(z)] exactly.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2 * math.pi)


def log_normal(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """Elementwise log N(z; mean, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar))


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """Per-dimension KL(N(mean, exp(logvar)) || N(0, 1)) = 0.5 (mu^2 + s^2 - 1 - log s^2)."""
    return 0.5 * (jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar)


def batch_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(q(z|x) || N(0, I)) summed over latents [n, L] and averaged over the batch."""
    return jnp.mean(kl_to_standard_normal(mean, logvar).sum(-1))


def kl_normal(mean_q, logvar_q, mean_p, logvar_p) -> jax.Array:
    """Per-dimension KL(N_q || N_p) between diagonal Gaussians."""
    return 0.5 * (logvar_p - logvar_q
                  + (jnp.exp(logvar_q) + jnp.square(mean_q - mean_p)) * jnp.exp(-logvar_p) - 1.0)


def pairwise_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log q(z_i,d | x_m,d) for every pair: [M, M, L] (i = sample, m = posterior)."""
    return log_normal(z[:, None, :], mean[None, :, :], logvar[None, :, :])


def mws_decomposition(z, mean, logvar, dataset_size: int, groups=None) -> dict[str, jax.Array]:
    """MWS estimates of I(x;z), TC, dimension-wise KL (batch means) for samples z [M, L].

    ``groups``: optional tuple of index tuples partitioning the L dimensions; adds the
    group-level total correlation ``group_tc = E[log q(z) - sum_g log q(z_g)]`` and the
    within-group remainder ``within_group_tc = TC - group_tc``.
    """
    m = z.shape[0]
    log_nm = jnp.log(dataset_size * m * 1.0)
    pair = pairwise_log_density(z, mean, logvar)  # [M, M, L]
    log_q_zx = log_normal(z, mean, logvar).sum(-1)  # [M]
    log_qz = jax.nn.logsumexp(pair.sum(-1), axis=1) - log_nm  # [M]
    log_qzj = jax.nn.logsumexp(pair, axis=1) - log_nm  # [M, L]
    log_pz = log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z)).sum(-1)
    out = {
        "mi": jnp.mean(log_q_zx - log_qz),
        "tc": jnp.mean(log_qz - log_qzj.sum(-1)),
        "dimwise_kl": jnp.mean(log_qzj.sum(-1) - log_pz),
        "kl_mc": jnp.mean(log_q_zx - log_pz),
    }
    if groups is not None:
        log_qg = sum(jax.nn.logsumexp(pair[:, :, list(g)].sum(-1), axis=1) - log_nm
                     for g in groups)
        out["group_tc"] = jnp.mean(log_qz - log_qg)
        out["within_group_tc"] = out["tc"] - out["group_tc"]
    return out
