"""Train-step throughput: the project's jitted step against a PyTorch reference.

    .venv/bin/pip install torch==2.13.0     # benchmark-only extra ("bench"), CPU build
    .venv/bin/python benchmarks/train_step.py --json benchmarks/results/train_step.json
    .venv/bin/python benchmarks/train_step.py --no-torch   # JAX variants only

Networks: the disentanglement_lib conv64 beta-VAE (beta 4, Adam 1e-4) and QLAE (AdamW 1e-3,
decay 0.1 on kernels only, element-wise clip 1) at batch 64 on 64x64x1 dSprites batches.
The JAX side is exactly ``disentangle.train.make_train_step`` (one jitted update with
donated state); the PyTorch side is the same network and loss written plainly in eager
PyTorch (NCHW, ``nn.ConvTranspose2d``), with the JAX initial parameters copied in and its
reconstruction checked against the JAX one (``max_abs_logit_diff`` in the output).

Both run in one process on the same pre-rendered batches (rendering is measured in
benchmarks/data.py). After warm-up, each repeat times ``--steps`` steps of every variant
back to back, in an order that alternates between repeats, so load from other users of the
machine hits all variants alike. Reported: median images/s over repeats per variant and
the median over repeats of the per-repeat ratio JAX / PyTorch.

Variants: ``jax`` (the project's step on CPU: the ``phase`` layers of
``disentangle.backend`` (sub-pixel transposed convolutions, encoder convolutions with
phase input gradients and space-to-depth kernel gradients), compiled with
``disentangle.xla_options``), ``jax_stock`` (the stock ``nnx.Conv`` / ``nnx.ConvTranspose``
layers that GPU and TPU get, with the same compiler options and the same initial
parameters), ``jax_xla_default`` (the project's layers compiled with XLA's default
options), ``jax_lax`` (stock layers and XLA's default options: the naive Flax NNX step),
``torch``; with ``--kernel-grad-ab`` also ``jax_xla_kernel_grad`` (the project's step with
XLA's own encoder kernel gradients instead of the space-to-depth matmul).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    add_xla_process_arg,
    apply_xla_process_flags,
    interleaved,
    median_ratio,
    write_json,
)

from disentangle import backend, xla_options  # noqa: E402
from disentangle import train as train_lib  # noqa: E402
from disentangle.config import load_config  # noqa: E402
from disentangle.data import get_dataset  # noqa: E402
from disentangle.methods import Batch  # noqa: E402

# ----------------------------------------------------------------------------- configs
REPO = Path(__file__).resolve().parents[1]


def make_config(method: str, batch_size: int = 64):
    """configs/<method>_dsprites.py (the settings users train with) at ``batch_size``."""
    config = load_config(REPO / "configs" / f"{method}_dsprites.py")
    config.train.batch_size = batch_size
    return config


def stock(s: train_lib.Setup) -> train_lib.Setup:
    """The same Setup (same initial parameters) with the stock ``nnx.Conv`` /
    ``nnx.ConvTranspose`` layers: what the backend switch gives on GPU and TPU."""
    with backend.use_layers("stock"):
        return train_lib.setup(s.config, s.dataset)


def xla_kernel_grad(s: train_lib.Setup) -> train_lib.Setup:
    """The project's layers, but XLA's own encoder kernel gradients (no space-to-depth
    matmul)."""
    from flax import nnx

    model = s.model()
    for conv in model.encoder.convs:
        conv.kernel_grad = "lax"
    graphdef = nnx.split(model, *model.param_groups().values(), ...)[0]
    return dataclasses.replace(s, graphdef=graphdef)


class JaxRunner:
    """The project's jitted train step on a fixed pool of batches."""

    def __init__(self, s: train_lib.Setup, batches: np.ndarray, xla_defaults: bool = False):
        self.step_fn = train_lib.make_train_step(s, s.schedule(1))
        self.xla_defaults = xla_defaults  # compile and run with XLA's default options
        copy = lambda t: jax.tree.map(jnp.copy, t)  # the step donates its state
        self.params, self.opt_state = copy(s.params), copy(s.opt_state)
        self.bad = jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32)
        self.batches = [Batch(jnp.asarray(b)) for b in batches]
        self.t = 0

    def run(self, steps: int) -> float:
        with xla_options.xla_defaults() if self.xla_defaults else contextlib.nullcontext():
            return self._run(steps)

    def _run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.t += 1
            batch = self.batches[self.t % len(self.batches)]
            self.params, self.opt_state, self.bad, logs = self.step_fn(
                self.params, self.opt_state, self.bad, jnp.asarray(self.t, jnp.int32), batch)
        jax.block_until_ready((self.params, logs))
        return time.perf_counter() - start


# ----------------------------------------------------------------------------- PyTorch
def torch_reference(method: str, config, jax_model, batches: np.ndarray):
    """(runner, max |logit difference| to JAX) for the same network, loss and optimizer."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    latent, beta = config.model.latent_dim, config.model.get("beta", 1.0)
    enc_out = 2 * latent if method == "beta_vae" else latent

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([
                nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 32, 4, 2, 1),
                nn.Conv2d(32, 64, 2, 2, 0), nn.Conv2d(64, 64, 2, 2, 0)])
            self.fc, self.head = nn.Linear(1024, 256), nn.Linear(256, enc_out)
            self.fc1, self.fc2 = nn.Linear(latent, 256), nn.Linear(256, 1024)
            self.deconvs = nn.ModuleList([
                nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in
                [(64, 64), (64, 32), (32, 32), (32, 1)]])
            if method == "qlae":
                v = config.model.values_per_latent
                self.codebook = nn.Parameter(torch.linspace(-0.5, 0.5, v).repeat(latent, 1))

        def encode(self, x):  # x: [n, 1, 64, 64]
            for conv in self.convs:
                x = torch.relu(conv(x))
            # Flatten in NHWC order, as the JAX model does.
            x = torch.relu(self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)))
            return self.head(x)

        def decode(self, z):
            h = torch.relu(self.fc1(z))
            h = torch.relu(self.fc2(h)).reshape(z.shape[0], 4, 4, 64).permute(0, 3, 1, 2)
            for i, deconv in enumerate(self.deconvs):
                h = deconv(h)
                if i < 3:
                    h = torch.relu(h)
            return h

        def loss(self, x):
            out = self.encode(x)
            if method == "beta_vae":
                mean, logvar = out.chunk(2, dim=-1)
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
                bce = nn.functional.binary_cross_entropy_with_logits(
                    self.decode(z), x, reduction="none").flatten(1).sum(1).mean()
                kl = (0.5 * (mean.square() + logvar.exp() - 1 - logvar)).sum(1).mean()
                return bce + beta * kl
            book = self.codebook
            idx = (out[:, :, None] - book[None]).abs().argmin(-1)
            q = torch.gather(book[None].expand(out.shape[0], -1, -1), 2, idx[..., None])[..., 0]
            z_hat = out + (q - out).detach()
            bce = nn.functional.binary_cross_entropy_with_logits(
                self.decode(z_hat), x, reduction="none").flatten(1).sum(1).mean()
            quant = (out.detach() - q).square().mean()
            commit = (out - q.detach()).square().mean()
            return (bce / 4096 + config.model.quantization_weight * quant
                    + config.model.commitment_weight * commit)

    net = Net()
    _copy_params(net, jax_model)
    tc = config.train
    if tc.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=tc.learning_rate)
    else:
        decay = [p for n, p in net.named_parameters() if n.endswith("weight")]
        rest = [p for n, p in net.named_parameters() if not n.endswith("weight")]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                 {"params": rest, "weight_decay": 0.0}], lr=tc.learning_rate)
    xs = [torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2))) for b in batches]

    # The same network: reconstruction logits from the posterior mean / codes agree.
    with torch.no_grad():
        out = net.encode(xs[0])
        z = out.chunk(2, -1)[0] if method == "beta_vae" else out
        if method == "qlae":
            idx = (z[:, :, None] - net.codebook[None]).abs().argmin(-1)
            z = torch.gather(net.codebook[None].expand(z.shape[0], -1, -1), 2,
                             idx[..., None])[..., 0]
        logits_t = net.decode(z).permute(0, 2, 3, 1).numpy()
    logits_j = np.asarray(jax_model.reconstruct(jnp.asarray(batches[0])))
    diff = float(np.max(np.abs(logits_t - logits_j)))

    state = {"t": 0}

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            state["t"] += 1
            opt.zero_grad(set_to_none=True)
            loss = net.loss(xs[state["t"] % len(xs)])
            loss.backward()
            if tc.clip_value:
                torch.nn.utils.clip_grad_value_(net.parameters(), tc.clip_value)
            opt.step()
        float(loss.detach())
        return time.perf_counter() - start

    return run, diff


def _copy_params(net, jax_model) -> None:
    """JAX (NHWC/HWIO, unflipped transposed kernels) -> PyTorch (NCHW/OIHW) parameters."""
    import torch

    def put(param, array):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.array(array, dtype=np.float32)))

    enc, dec = jax_model.encoder, jax_model.decoder
    for tc, jc in zip(net.convs, enc.convs):
        put(tc.weight, np.asarray(jc.kernel[...]).transpose(3, 2, 0, 1))
        put(tc.bias, jc.bias[...])
    for tl, jl in [(net.fc, enc.fc), (net.head, enc.head), (net.fc1, dec.fc1),
                   (net.fc2, dec.fc2)]:
        put(tl.weight, np.asarray(jl.kernel[...]).T)
        put(tl.bias, jl.bias[...])
    for tc, jc in zip(net.deconvs, dec.deconvs):
        # flax correlates the dilated input with w; torch scatters with W: W = flip(w),
        # laid out [in, out, kh, kw].
        put(tc.weight, np.asarray(jc.kernel[...])[::-1, ::-1].transpose(2, 3, 0, 1))
        put(tc.bias, jc.bias[...])
    if hasattr(net, "codebook"):
        put(net.codebook, jax_model.codebook[...])


# ----------------------------------------------------------------------------- main
def bench_method(method: str, args) -> dict:
    config = make_config(method, args.batch_size)
    dataset = get_dataset("dsprites")
    rng = np.random.default_rng(0)
    batches = np.stack([dataset.sample(args.batch_size, rng)[1] for _ in range(8)])
    s = train_lib.setup(config, dataset)
    s_stock = stock(s)
    runners = {"jax": JaxRunner(s, batches).run, "jax_stock": JaxRunner(s_stock, batches).run}
    if args.kernel_grad_ab:
        runners["jax_xla_kernel_grad"] = JaxRunner(xla_kernel_grad(s), batches).run
    if not args.no_lax:
        runners["jax_xla_default"] = JaxRunner(s, batches, xla_defaults=True).run
        # what plain Flax code gets
        runners["jax_lax"] = JaxRunner(s_stock, batches, xla_defaults=True).run
    if not args.no_torch:
        runners["torch"], diff = torch_reference(method, config, s.model(), batches)
    times = interleaved(runners, args.repeats, dict.fromkeys(runners, args.steps),
                        warmup=args.warmup)
    ips = {n: [args.steps * args.batch_size / t for t in ts] for n, ts in times.items()}
    out = {
        "method": method,
        "images_per_sec": {n: statistics.median(v) for n, v in ips.items()},
        "images_per_sec_all": ips,
        "speedup_phase_layers": median_ratio(ips["jax"], ips["jax_stock"]),
    }
    if "torch" in ips:
        import torch

        out.update(ratio_jax_over_torch=median_ratio(ips["jax"], ips["torch"]),
                   max_abs_logit_diff=diff, torch_threads=torch.get_num_threads())
    if "jax_lax" in ips:
        out["speedup_project_over_naive"] = median_ratio(ips["jax"], ips["jax_lax"])
        out["speedup_compiler_options"] = median_ratio(ips["jax"], ips["jax_xla_default"])
    if "jax_xla_kernel_grad" in ips:
        out["speedup_s2d_kernel_grad"] = median_ratio(ips["jax"], ips["jax_xla_kernel_grad"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--methods", default="beta_vae,qlae")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-lax", action="store_true",
                   help="skip the naive and XLA-default-options variants")
    p.add_argument("--no-torch", action="store_true",
                   help="skip the PyTorch reference (needed when torch is not installed)")
    p.add_argument("--kernel-grad-ab", action="store_true",
                   help="add jax_xla_kernel_grad: XLA's own encoder kernel gradients")
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)
    results = {
        "benchmark": "train_step",
        "batch_size": args.batch_size, "steps_per_repeat": args.steps,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg(),
        "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
        "platform": platform.platform(),
        "xla_flags": xla_flags,
        "compiler_options": xla_options.compiler_options(),
        "results": [],
    }
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            p.error("torch is not installed: pip install torch==2.13.0 (the 'bench' extra), "
                    "or pass --no-torch")
        results["torch"] = torch.__version__
    for method in args.methods.split(","):
        r = bench_method(method, args)
        results["results"].append(r)
        ratios = {k: v for k, v in r.items() if k.startswith(("speedup_", "ratio_"))}
        print(f"{method}: " + ", ".join(f"{k} {v:.0f} img/s"
                                        for k, v in r["images_per_sec"].items())
              + "; " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
              + (f"; logit diff {r['max_abs_logit_diff']:.1e}" if "torch" in
                 r["images_per_sec"] else ""), flush=True)
    results["load_average_end"] = os.getloadavg()
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
