"""Metrics during training (eval.every) and the TensorBoard / W&B writers."""

from __future__ import annotations

import json
import shutil
import struct

import pytest

from disentangle import train as train_lib
from disentangle.errors import ConfigError
from disentangle.tracking import EVAL_LOG, read_log


def _losses(run):
    return [[r[k] for k in sorted(r) if k not in ("images_per_sec", "time")]
            for r in train_lib.read_log(run)]


def test_eval_every_leaves_training_unchanged_and_resumes_exactly(make_config, tmp_path):
    plain = train_lib.train_and_evaluate(make_config("beta_vae", steps=6, **{
        "train.checkpoint_every": 3}), tmp_path / "plain", progress=False)
    config = make_config("beta_vae", steps=6, **{"train.checkpoint_every": 3, "eval.every": 2,
                                                 "eval.every_samples": 300})
    tracked = train_lib.train_and_evaluate(config, tmp_path / "tracked", progress=False)
    assert _losses(tracked) == _losses(plain)
    rows = read_log(tracked, EVAL_LOG)
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(0.0 <= r["infom"] <= 1.0 and 0.0 <= r["mig"] <= 1.0 for r in rows)
    # A kill after checkpoint 3: the resumed run repeats the same losses and scores.
    shutil.copytree(tracked, tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "6")
    train_lib.train_and_evaluate(config, tmp_path / "killed", progress=False)
    assert _losses(tmp_path / "killed") == _losses(plain)
    assert read_log(tmp_path / "killed", EVAL_LOG) == rows


def test_unknown_writer_is_refused_before_anything_is_written(make_config, tmp_path):
    with pytest.raises(ConfigError, match=r"train.log_to contains 'mlflow'; accepted: jsonl"):
        train_lib.train_and_evaluate(make_config("ae", steps=2, **{
            "train.log_to": ("jsonl", "mlflow")}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _events(path):
    """Events of a TensorBoard file: TFRecord framing (u64 length, u32 crc, data, u32 crc)."""
    from tensorboardX.proto import event_pb2

    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        out.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
        i += 12 + n + 4
    return out


def test_tensorboard_events_hold_the_losses_and_the_nmi_image(make_config, tmp_path):
    pytest.importorskip("tensorboardX")
    config = make_config("beta_vae", steps=4, **{"train.log_to": ("jsonl", "tensorboard"),
                                                 "eval.every": 4, "eval.every_samples": 300})
    run = train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    events = [e for f in sorted((run / "tensorboard").glob("events.out.tfevents.*"))
              for e in _events(f)]
    scalars = {(v.tag, e.step): v.simple_value for e in events for v in e.summary.value
               if v.HasField("simple_value")}
    for row in train_lib.read_log(run):
        assert scalars[("train/loss", row["step"])] == pytest.approx(row["loss"], rel=1e-6)
    infom = read_log(run, EVAL_LOG)[0]["infom"]
    assert scalars[("eval/infom", 4)] == pytest.approx(infom, rel=1e-6)
    images = [v.image for e in events for v in e.summary.value if v.tag == "eval/nmi"]
    assert images and images[0].height > 20 and images[0].encoded_image_string[:4] == (
        b"\x89PNG")
    grids = [v.image for e in events for v in e.summary.value if v.tag == "eval/traversals"]
    assert grids and grids[0].height >= 4 * 64  # one row of 64x64 frames per latent


def _wandb_history(path) -> list[dict]:
    """History rows of an offline ``.wandb`` file: a 7-byte header, then LevelDB-log
    records (32 KiB blocks; per fragment a 4-byte checksum, 2-byte length, 1-byte type:
    1 full, 2 first, 3 middle, 4 last) holding ``Record`` protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, rows, pos, parts = path.read_bytes(), [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # block trailer
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        parts += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4) and parts:
            record = wandb_internal_pb2.Record.FromString(parts)
            parts = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in record.history.item})
        elif kind == 0:
            break
    return rows


@pytest.mark.slow
def test_wandb_offline_run_holds_the_losses_and_the_nmi_image(make_config, tmp_path,
                                                              monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = make_config("beta_vae", steps=4, **{"train.log_to": ("jsonl", "wandb"),
                                                 "eval.every": 4, "eval.every_samples": 300})
    run = train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    history = _wandb_history(next(offline[0].glob("run-*.wandb")))
    losses = {r["_step"]: r["train/loss"] for r in history if "train/loss" in r}
    assert losses == pytest.approx({r["step"]: r["loss"] for r in train_lib.read_log(run)})
    evals = [r for r in history if "eval/infom" in r]
    assert evals[0]["eval/infom"] == pytest.approx(read_log(run, EVAL_LOG)[0]["infom"])
    pngs = [p.name for p in (offline[0] / "files" / "media" / "images").rglob("*.png")]
    assert any(n.startswith("nmi") for n in pngs) and any(n.startswith("traversals")
                                                          for n in pngs)


def test_eval_every_takes_distinct_rows_of_a_finite_dataset(make_config, tmp_path):
    """The tracker's sample is the evaluation sample of disentangle.represent: on stored
    data, each row at most once (capped with a warning), so held-out splits are disjoint."""
    import numpy as np

    from disentangle.data.base import ArrayData
    from disentangle.tracking import Tracker

    factors = np.stack(np.meshgrid(np.arange(5), np.arange(10), indexing="ij"), -1).reshape(-1, 2)
    data = ArrayData("toy", np.zeros((50, 4, 4, 1), np.uint8), factors, ("a", "b"), (5, 10))
    config = make_config("ae", steps=2, **{"eval.every": 1, "eval.every_samples": 200})
    with pytest.warns(UserWarning, match="200 evaluation samples asked for, but it stores 50"):
        tracker = Tracker(tmp_path, config, data, model_of=None, start=0)
    assert len(tracker.factors) == 50
    assert len({tuple(f) for f in tracker.factors}) == 50
