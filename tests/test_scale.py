"""Scale: vmapped members equal separate runs; a sharded batch equals one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle import train as train_lib
from disentangle.errors import ConfigError
from disentangle.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def test_member_configs_grid_and_names(make_config):
    config = make_config("beta_vae", **{"train.num_seeds": 2, "train.seed": 5,
                                        "train.vmap_key": "model.beta",
                                        "train.vmap_values": [1, 8]})
    members = train_lib.member_configs(config)
    assert list(members) == ["beta1_seed5", "beta1_seed6", "beta8_seed5", "beta8_seed6"]
    m = members["beta8_seed6"]
    assert (m.train.seed, m.model.beta, m.train.num_seeds, tuple(m.train.vmap_values)) == (
        6, 8.0, 1, ())
    assert isinstance(m.model.beta, float)
    with pytest.raises(ConfigError, match="train.vmap_key"):
        train_lib.member_configs(make_config("ae", **{"train.vmap_key": "train.learning_rate",
                                                      "train.vmap_values": [0.1, 0.2]}))


def test_vmapped_members_equal_separate_runs(make_config, tmp_path):
    """Two members (beta 1 and 6, seed 3) = their separate runs."""
    sweep = make_config("beta_vae", steps=6, **{"train.num_seeds": 1, "train.seed": 3,
                                                "train.vmap_key": "model.beta",
                                                "train.vmap_values": [1.0, 6.0],
                                                "train.checkpoint_every": 3})
    train_lib.train_and_evaluate(sweep, tmp_path / "sweep", progress=False)
    members = train_lib.member_configs(sweep)
    for name, member in members.items():
        run_dir = tmp_path / "sweep" / name
        assert json.loads((run_dir / "config.json").read_text())["model"]["beta"] == (
            member.model.beta)
        train_lib.train_and_evaluate(member, tmp_path / name, progress=False)
        vm, sep = train_lib.read_log(run_dir), train_lib.read_log(tmp_path / name)
        assert [r["step"] for r in vm] == list(range(1, 7))
        for a, b in zip(vm, sep):
            for key in ("loss", "reconstruction", "kl"):
                np.testing.assert_allclose(a[key], b[key], rtol=2e-5, err_msg=f"{name} {key}")
        p_vm = jax.tree.leaves(load_run(run_dir).model)
        p_sep = jax.tree.leaves(load_run(tmp_path / name).model)
        for a, b in zip(p_vm, p_sep):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # beta enters the loss: the two members' losses differ from the first step on.
    logs = [train_lib.read_log(tmp_path / "sweep" / n)[0] for n in members]
    assert logs[0]["kl"] == logs[1]["kl"] and logs[0]["loss"] < logs[1]["loss"]


@pytest.mark.slow
def test_members_on_host_batches_equal_separate_runs(make_config, tmp_path):
    """Host-fed data (npz, no device sampler): each member equals its separate run."""
    rng = np.random.default_rng(0)
    factors = np.stack(np.meshgrid(np.arange(4), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
    np.savez(tmp_path / "d.npz", images=(rng.random((16, 64, 64, 1)) * 255).astype(np.uint8),
             factors=factors)
    config = make_config("beta_vae", steps=3, **{
        "data.name": f"npz:{tmp_path / 'd.npz'}", "train.num_seeds": 2, "train.batch_size": 8})
    train_lib.train_and_evaluate(config, tmp_path / "members", progress=False)
    for name, member in train_lib.member_configs(config).items():
        train_lib.train_and_evaluate(member, tmp_path / name, progress=False)
        np.testing.assert_allclose(
            [r["loss"] for r in train_lib.read_log(tmp_path / "members" / name)],
            [r["loss"] for r in train_lib.read_log(tmp_path / name)], rtol=2e-5)
    first = [train_lib.read_log(tmp_path / "members" / m)[0]["loss"] for m in ("seed0", "seed1")]
    assert first[0] != first[1]  # seeds differ


def test_batch_size_must_divide_over_devices():
    devices = jax.devices() * 3  # the check needs only the count
    with pytest.raises(ConfigError, match=r"train.batch_size=32 .*3 devices.*multiples of 3"):
        train_lib.data_mesh(32, devices=devices)


SHARDED = textwrap.dedent("""
    import json, sys
    import jax
    sys.path.insert(0, "tests")
    from conftest import tiny_config
    from disentangle import train as train_lib
    assert jax.device_count() == 4, jax.devices()
    config = tiny_config("beta_vae", steps=4, **{"train.batch_size": 32})
    s = train_lib.setup(config)
    leaf = jax.tree.leaves(s.params)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
    train_lib.train_and_evaluate(config, sys.argv[1], progress=False)
    members = tiny_config("beta_vae", steps=4, **{"train.batch_size": 32,
                                                  "train.num_seeds": 2})
    train_lib.train_and_evaluate(members, sys.argv[2], progress=False)
    try:
        train_lib.setup(tiny_config("ae", **{"train.batch_size": 30}))
    except train_lib.ConfigError as e:
        print(json.dumps({"error": str(e)}))
""")


@pytest.mark.slow  # a subprocess with 4 fake devices: ~15 s on 2 busy cores
def test_sharded_batch_equals_single_device(make_config, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path / "sharded"),
                          str(tmp_path / "sharded_members")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train.batch_size=30" in json.loads(out.stdout.strip().splitlines()[-1])["error"]
    config = make_config("beta_vae", steps=4, **{"train.batch_size": 32})
    train_lib.train_and_evaluate(config, tmp_path / "single", progress=False)
    sharded, single = (train_lib.read_log(tmp_path / d) for d in ("sharded", "single"))
    assert len(sharded) == len(single) == 4
    for a, b in zip(sharded, single):
        for key in ("loss", "reconstruction", "kl"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
    # Vmapped members compose with the data mesh: each member's sharded log
    # equals its own single-device run.
    for seed in ("seed0", "seed1"):
        member = train_lib.read_log(tmp_path / "sharded_members" / seed)
        alone = make_config("beta_vae", steps=4, **{"train.batch_size": 32,
                                                     "train.seed": int(seed[4:])})
        train_lib.train_and_evaluate(alone, tmp_path / f"alone_{seed}", progress=False)
        ref = train_lib.read_log(tmp_path / f"alone_{seed}")
        assert len(member) == len(ref) == 4
        for a, b in zip(member, ref):
            np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5, err_msg=seed)


def test_members_non_finite_loss_names_the_member_and_its_checkpoint(make_config, tmp_path,
                                                                     monkeypatch):
    """Member 1's parameters turn NaN from step 5: the error names that member's directory,
    step 5 and its step-3 checkpoint; member 0 is untouched."""
    config = make_config("ae", steps=9, **{"train.num_seeds": 2, "train.checkpoint_every": 3})
    real_make = train_lib.make_members_step

    def make_poisoned(*args, **kwargs):
        step = real_make(*args, **kwargs)

        def poisoned(params, opt_state, bad, t, *rest):
            if int(t) >= 5:  # stacked on a leading member axis
                nan_member_1 = jnp.asarray([1.0, np.nan])
                params = jax.tree.map(
                    lambda p: p * nan_member_1.reshape((2,) + (1,) * (p.ndim - 1)), params)
            return step(params, opt_state, bad, t, *rest)

        return poisoned

    monkeypatch.setattr(train_lib, "make_members_step", make_poisoned)
    with pytest.raises(train_lib.NonFiniteLossError,
                       match=r"step 5 of member .*seed1; the last good checkpoint is step 3"):
        train_lib.train_and_evaluate(config, tmp_path, progress=False)
    for member in ("seed0", "seed1"):
        ckpts = sorted(int(p.name) for p in (tmp_path / member / "checkpoints").iterdir()
                       if p.name.isdigit())
        assert ckpts == [3]
        assert train_lib.read_log(tmp_path / member)[-1]["step"] == 4
