"""The gradient clip's scope (train.clip_scope) and the QLAE authors' dSprites settings."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle import train as train_lib
from disentangle.config import load_config, validate
from disentangle.errors import ConfigError
from disentangle.optim import gradient_clip, make_optimizer
from tests.conftest import CONFIGS


def _by_name(tree) -> dict[str, np.ndarray]:
    """'decoder/net/layers/0/kernel' -> leaf (the Variable's trailing 'value' dropped)."""
    def name(path):
        keys = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        return "/".join(k for k in keys if k != "value")

    return {name(path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def qlae_params():
    from tests.conftest import tiny_config

    return train_lib.setup(tiny_config("qlae")).params["model"]


def _clipped(params, scope: str) -> dict[str, np.ndarray]:
    """A gradient of 1e6 (and -1e6) on every parameter, after the clip of ``scope``."""
    config = load_config(CONFIGS / "qlae_dsprites.py", [("train.clip_scope", scope)])
    clip = gradient_clip(config.train)
    sign = lambda a: jnp.where(jnp.arange(a.size).reshape(a.shape) % 2 == 0, 1.0, -1.0)  # noqa: E731
    grads = jax.tree.map(lambda a: 1e6 * sign(a), params)
    updates, _ = clip.update(grads, clip.init(params), params)
    return _by_name(updates)


def test_decayed_scope_clips_kernels_only(qlae_params):
    out = _clipped(qlae_params, "decayed")
    kernels = {k: v for k, v in out.items() if k.endswith("kernel")}
    others = {k: v for k, v in out.items() if not k.endswith("kernel")}
    assert kernels and any("codebook" in k for k in others) and any("bias" in k for k in others)
    for v in kernels.values():  # clipped to [-1, 1] element-wise
        np.testing.assert_array_equal(np.abs(v), 1.0)
    for v in others.values():  # biases and codebooks: the huge gradient passes unclipped
        np.testing.assert_array_equal(np.abs(v), 1e6)


def test_all_scope_clips_every_parameter(qlae_params):
    for v in _clipped(qlae_params, "all").values():
        np.testing.assert_array_equal(np.abs(v), 1.0)


def test_no_clip_when_clip_value_is_zero():
    config = load_config(CONFIGS / "qlae_dsprites.py", [("train.clip_value", 0.0)])
    assert gradient_clip(config.train) is None
    make_optimizer(config.train)  # the optimizer without a clip


def test_clip_scope_is_validated_with_a_clear_error():
    config = load_config(CONFIGS / "qlae_dsprites.py", [("train.clip_scope", "kernels")])
    with pytest.raises(ConfigError, match=r"train.clip_scope='kernels'; accepted: 'decayed', "
                                          r"'all' \(from the command line\)"):
        validate(config, origins={"train.clip_scope": "the command line"})


def test_qlae_configs_have_the_authors_settings():
    """dSprites: codebook terms 0.001; Shapes3D / MPI3D: 0.01; the clip on decayed weights."""
    for name, weight in [("qlae_dsprites", 0.001), ("qlae_shapes3d", 0.01),
                         ("qlae_mpi3d", 0.01)]:
        config = load_config(CONFIGS / f"{name}.py")
        assert config.model.quantization_weight == config.model.commitment_weight == weight
        assert config.train.clip_value == 1.0 and config.train.clip_scope == "decayed"


@pytest.mark.parametrize("scope,decayed", [
    ("all_but_biases", {"kernel", "scale", "input_map"}),  # the authors' code
    ("kernels", {"kernel"})])
def test_decay_scope_on_the_hsu_style_networks(scope, decayed):
    """Which parameters AdamW decays (and the 'decayed' clip clips): by their last name."""
    from flax import nnx

    from disentangle.methods.base import DataSpec
    from disentangle.methods.qlae.qlae import QLAE
    from disentangle.optim import decay_labels

    model = nnx.eval_shape(lambda: QLAE(DataSpec((64, 64, 1)), network="hsu_style",
                                        rngs=nnx.Rngs(0)))
    labels = _by_name(decay_labels(nnx.state(model, nnx.Param), scope))
    last = {}
    for name, label in labels.items():
        last.setdefault(name.rsplit("/", 1)[-1], set()).add(str(label))
    assert set(last) == {"kernel", "bias", "scale", "input_map", "codebook"}
    assert {n for n, ls in last.items() if ls == {"decay"}} == decayed
    assert {n for n, ls in last.items() if ls == {"no_decay"}} == set(last) - decayed


def test_decay_scope_is_validated():
    config = load_config(CONFIGS / "qlae_dsprites.py", [("train.decay_scope", "weights")])
    with pytest.raises(ConfigError, match=r"train.decay_scope='weights'; accepted: "
                                          r"'all_but_biases', 'kernels'"):
        validate(config)
