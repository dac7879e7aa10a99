"""The backend switch: CPU phase layers and stock flax layers are interchangeable.

Same parameter tree, same outputs and gradients for the same parameters, and a checkpoint
written with one layer kind restores into the other with equal outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from disentangle import backend, xla_options
from disentangle.errors import UserError
from disentangle.nn import Conv64Decoder, Conv64Encoder
from disentangle.nn.subpixel import PhaseGradConv, SubPixelConvTranspose


def test_layer_kind_follows_the_backend_unless_overridden(monkeypatch):
    monkeypatch.delenv(backend.LAYERS_ENV, raising=False)
    assert backend.layer_kind("cpu") == "phase"
    assert backend.layer_kind("gpu") == backend.layer_kind("tpu") == "stock"
    assert backend.layer_kind() == backend.layer_kind(jax.default_backend())
    monkeypatch.setenv(backend.LAYERS_ENV, "stock")
    assert backend.layer_kind("cpu") == "stock"
    enc = nnx.eval_shape(lambda: Conv64Encoder(1, 4, rngs=nnx.Rngs(0)))  # abstract: no init
    assert all(type(c) is nnx.Conv for c in enc.convs)
    with backend.use_layers("phase"):
        assert backend.layer_kind("gpu") == "phase"
        dec = nnx.eval_shape(lambda: Conv64Decoder(4, 1, rngs=nnx.Rngs(0)))
        assert all(type(d) is SubPixelConvTranspose for d in dec.deconvs)
    assert backend.layer_kind() == "stock"  # restored
    monkeypatch.setenv(backend.LAYERS_ENV, "cudnn")
    with pytest.raises(UserError, match=r"DISENTANGLE_LAYERS \(environment variable\)="
                                        r"'cudnn'; accepted: phase, stock"):
        backend.layer_kind()
    with pytest.raises(UserError, match="'lax'; accepted: phase, stock"):
        backend.conv_layers("lax")


def _conv_hlo(jitted, x, w) -> str:
    return jitted.lower(x, w).compile().as_text()


def test_other_backends_get_plain_jit(monkeypatch):
    """Where the CPU tuning does not apply, ``xla_options.jit`` compiles exactly what
    ``jax.jit`` compiles; on CPU it differs (the compiler options)."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    x, w = jnp.ones((4, 32, 32, 32)), jnp.ones((4, 4, 32, 32))
    plain = _conv_hlo(jax.jit(conv), x, w)
    assert _conv_hlo(xla_options.jit(conv), x, w) != plain
    monkeypatch.setattr(backend, "cpu_tuned", lambda backend=None: False)
    assert xla_options.compiler_options() is None
    assert _conv_hlo(xla_options.jit(conv), x, w) == plain


def _flat(tree) -> dict[str, jax.Array]:
    return {jax.tree_util.keystr(path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _param_leaves(module) -> dict[str, jax.Array]:
    return _flat(nnx.state(module, nnx.Param))


def _conv64(kind: str, abstract: bool = False) -> nnx.List:
    def build():
        return nnx.List([Conv64Encoder(3, 6, rngs=nnx.Rngs(0), layers=kind),
                         Conv64Decoder(6, 3, rngs=nnx.Rngs(1), layers=kind)])
    return nnx.eval_shape(build) if abstract else build()


def test_conv64_layer_kinds_have_the_same_parameter_tree():
    """Same parameter paths, shapes and dtypes with either layer kind (what a checkpoint
    holds); each kind builds its own classes."""
    nets = {kind: _conv64(kind, abstract=True) for kind in backend.LAYER_KINDS}
    assert type(nets["phase"][0].convs[1]) is PhaseGradConv
    assert type(nets["phase"][1].deconvs[1]) is SubPixelConvTranspose
    assert type(nets["stock"][0].convs[1]) is nnx.Conv
    assert type(nets["stock"][1].deconvs[1]) is nnx.ConvTranspose
    phase, stock = (_param_leaves(nets[k]) for k in ("phase", "stock"))
    assert len(phase) == 2 * (4 + 2) + 2 * (2 + 4)  # kernel and bias of every layer
    assert {k: (v.shape, v.dtype) for k, v in phase.items()} == {
        k: (v.shape, v.dtype) for k, v in stock.items()}


@pytest.mark.slow
def test_conv64_phase_and_stock_layers_agree():
    """Encoder + decoder built with each layer kind: the same initial parameters and,
    given the same (perturbed) parameters, equal outputs and gradients with respect to
    every parameter and the input."""
    nets = {kind: _conv64(kind) for kind in backend.LAYER_KINDS}
    phase, stock = (_param_leaves(nets[k]) for k in ("phase", "stock"))
    for name in phase:
        np.testing.assert_array_equal(phase[name], stock[name])

    # the same non-initial parameters in both (biases non-zero too)
    keys = iter(jax.random.split(jax.random.key(7), 64))
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(next(keys), p.shape),
                          nnx.state(nets["phase"], nnx.Param))
    for kind in backend.LAYER_KINDS:
        nnx.update(nets[kind], params)

    x = jax.random.uniform(jax.random.key(2), (2, 64, 64, 3))
    target = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
    enc = nets["phase"][0]
    assert all(c._plan(h) is not None for c, h in zip(
        enc.convs, [x, jnp.zeros((2, 32, 32, 32)), jnp.zeros((2, 16, 16, 32)),
                    jnp.zeros((2, 8, 8, 64))]))  # the phase paths are taken
    assert all(d.resolved_method(jnp.zeros((2, 4, 4, d.in_features))) != "lax"
               for d in nets["phase"][1].deconvs)

    def loss(nets, x):  # a loss whose gradient depends on every output position
        enc, dec = nets
        return jnp.sum(jnp.sin(dec(enc(x))) * target)

    @nnx.jit
    def outputs_and_grads(pair, x):
        grads = nnx.grad(loss, argnums=(0, 1))(pair, x)
        return pair[1](pair[0](x)), nnx.state(grads[0], nnx.Param), grads[1]

    results = {}
    for kind, pair in nets.items():
        out, g, gx = outputs_and_grads(pair, x)
        results[kind] = out, _flat(g), gx
    (out_p, g_p, gx_p), (out_s, g_s, gx_s) = results["phase"], results["stock"]
    np.testing.assert_allclose(out_p, out_s, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx_p, gx_s, rtol=1e-4, atol=1e-4 * float(jnp.abs(gx_s).max()))
    assert list(g_p) == list(g_s)
    for name in g_s:
        scale = float(jnp.abs(g_s[name]).max())
        assert scale > 0, name
        np.testing.assert_allclose(g_p[name], g_s[name], rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("written,read", [("phase", "stock"), ("stock", "phase")])
def test_checkpoint_restores_into_the_other_layer_kind(tmp_path, monkeypatch, make_config,
                                                       written, read):
    """A conv64 run trained with one layer kind, loaded with the other: the same restored
    parameters and equal encodings and decodings."""
    from disentangle.runs import load_run
    from disentangle.train import setup, train_and_evaluate

    config = make_config("beta_vae", steps=2, **{
        "model.network": "conv64", "train.batch_size": 8, "train.checkpoint_every": 2})
    monkeypatch.setenv(backend.LAYERS_ENV, written)
    run_dir = train_and_evaluate(config, tmp_path / "run", progress=False)
    runs = {}
    for kind in (written, read):
        monkeypatch.setenv(backend.LAYERS_ENV, kind)
        runs[kind] = load_run(run_dir)
    assert runs[written].step == runs[read].step == 2
    conv_cls = backend.conv_layers(read)[0]
    assert type(runs[read].model.encoder.convs[0]) is conv_cls
    assert type(runs[written].model.encoder.convs[0]) is not conv_cls
    a, b = (_param_leaves(runs[k].model) for k in (written, read))
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    fresh = _param_leaves(setup(config).model())  # what a failed restore would give
    assert list(fresh) == list(a)
    assert all(not np.array_equal(fresh[name], a[name]) for name in a)  # trained 2 steps
    x = jnp.asarray(runs[read].dataset.sample(4, np.random.default_rng(0))[1])
    rep_w, rep_r = runs[written].model.encode(x), runs[read].model.encode(x)
    np.testing.assert_allclose(rep_r.mean, rep_w.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rep_r.logvar, rep_w.logvar, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runs[read].model.decode(rep_w.mean),
                               runs[written].model.decode(rep_w.mean), rtol=1e-5, atol=1e-4)
