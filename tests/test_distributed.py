"""Training under tf.distribute strategies: config validation, sharded input, and a two-worker
MultiWorkerMirroredStrategy run on 127.0.0.1 (CPU) that is killed, resumed, and compared with one process."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MODEL

from hacnn_tf import distribute
from hacnn_tf.callbacks import committed_backups
from hacnn_tf.config import load_config
from hacnn_tf.data.pipeline import make_train_dataset
from hacnn_tf.trainer import fit


def test_distribute_config_is_validated():
    config = load_config(
        None, ["distribute.strategy=multi_worker", "distribute.communication=ring", "distribute.timeout_seconds=600"]
    )
    assert config.distribute.strategy == "multi_worker" and config.distribute.sync_batch_norm is True
    assert load_config(None).distribute.strategy == "default"
    bad = {
        "distribute.strategy=horovod": "distribute.strategy must be one of",
        "distribute.devices=['/gpu:0']": "distribute.devices applies to the 'mirrored' strategy only",
        "distribute.communication=nccl": "distribute.communication must be one of",
        "distribute.sync_batch_norm=maybe": "distribute.sync_batch_norm must be true or false",
        "distribute.timeout_seconds=0": "distribute.timeout_seconds must be a positive number",
    }
    for override, message in bad.items():
        with pytest.raises(ValueError, match=message):
            load_config(None, [override])
    with pytest.raises(ValueError, match="distribute.devices must be a non-empty list"):
        load_config(None, ["distribute.strategy=mirrored", "distribute.devices=[]"])
    with pytest.raises(ValueError, match="Unknown config field 'distribute.strategies'"):
        load_config(None, ["distribute.strategies=mirrored"])

    class FourReplicas:
        num_replicas_in_sync = 4

    distribute.check_batch_split(FourReplicas(), 32, 4)  # 8 images per replica: 2 whole identities
    with pytest.raises(ValueError, match=r"train.batch_size \(30\) must be a multiple of the 4 replicas"):
        distribute.check_batch_split(FourReplicas(), 30, None)
    with pytest.raises(ValueError, match="multiple of train.num_instances"):
        distribute.check_batch_split(FourReplicas(), 16, 8)  # 4 images per replica: half an identity


@pytest.mark.parametrize("num_instances", [None, 2])
def test_worker_shards_make_up_the_single_process_batches(tiny_synthetic, num_instances):
    make = lambda **kw: list(
        make_train_dataset(
            tiny_synthetic.train,
            (64, 32),
            8,
            ["y"],
            seed=5,
            epochs=2,
            initial_epoch=1,
            num_instances=num_instances,
            **kw,
        )
    )
    whole = make()
    # Two workers with two local replicas each: every worker reads 2 batches of 2 images per global step.
    shards = [make(num_shards=2, shard_index=i, split=2) for i in range(2)]
    assert all(len(shard) == 2 * len(whole) for shard in shards)
    for step, (images, labels) in enumerate(whole):
        parts = [batch for shard in shards for batch in shard[2 * step : 2 * step + 2]]  # replica order
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), images)  # same augmentations too
        np.testing.assert_array_equal(np.concatenate([p[1]["y"] for p in parts]), labels["y"])
        if num_instances:  # P x K: each replica holds whole identities (K = 2 images of one id)
            assert all(len(set(p[1]["y"].numpy())) == 1 for p in parts)


# One training process of a cluster. Records every write into output.dir (audit hook) in RESULT.writes, dumps the
# weights after the first step and at the end, and with KILL=1 the second worker SIGKILLs itself after the first
# step of the second epoch, once the chief has backed up the first.
WORKER = r"""
import json, os, signal, sys
root, result, kill, *overrides = sys.argv[1:]
out_dir = os.path.realpath(next(o.split("=", 1)[1] for o in overrides if o.startswith("output.dir=")))
log = open(result + ".writes", "a", buffering=1)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def audit(event, args):
    if event == "open":
        path, mode, flags = args
        paths = [path] if (any(c in mode for c in "wax+") if isinstance(mode, str) else flags & WRITE) else []
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.chmod"):
        paths = list(args[:2])
    else:
        return
    for path in paths:
        if isinstance(path, (str, bytes, os.PathLike)):
            real = os.path.realpath(os.fsdecode(path))
            if real == out_dir or real.startswith(out_dir + os.sep):
                log.write(f"{event} {real}\n")

sys.addaudithook(audit)
from hacnn_tf import distribute
from hacnn_tf.callbacks import committed_backups
from hacnn_tf.config import load_config
from hacnn_tf.trainer import fit
config = load_config(None, overrides)
strategy = distribute.initialize(config)  # before any other TF op
import keras, numpy as np
from hacnn_tf.data import load_dataset
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
weights = lambda model: {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}  # without the model name

class Probe(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (0, 0):
            np.savez(result + ".step1.npz", **weights(self.model))
        if kill == "1" and task == 1 and (self.epoch, batch) == (1, 0):
            os.kill(os.getpid(), signal.SIGKILL)

model, history = fit(config, load_dataset("market1501", root), verbose=0, extra_callbacks=[Probe()])
np.savez(result + ".npz", **weights(model))
with open(result + ".json", "w") as handle:
    json.dump({"epochs": history.epoch, "chief": distribute.worker_role(strategy).is_chief}, handle)
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(results: pathlib.Path, root, overrides, kill: bool):
    results.mkdir(parents=True, exist_ok=True)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": distribute.tf_config_for(cluster, "worker", index),
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(results),
        }
        stderr = open(results / f"worker{index}.log", "w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(root),
                str(results / f"worker{index}"),
                "1" if kill else "0",
                *overrides,
            ],
            env=env,
            stdout=stderr,
            stderr=stderr,
        )
        workers.append((process, stderr))
    return workers


def finish(workers, results, timeout, expect=(0, 0)):
    """Waits for the workers to exit with `expect` (None: any failure; the test kills what is left once the
    workers with an expected code have exited). Kills them all on a timeout; prints their logs on failure."""
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        for (process, _), code in zip(workers, expect):
            if code is not None:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()
    codes = tuple(process.returncode for process, _ in workers)
    if timed_out or any(c != e if e is not None else c == 0 for c, e in zip(codes, expect)):
        logs = "\n".join(
            f"--- worker {i} (exit {c}):\n{(results / f'worker{i}.log').read_text()[-3000:]}"
            for i, c in enumerate(codes)
        )
        pytest.fail(f"workers exited with {codes}, expected {expect}{' (timed out)' if timed_out else ''}\n{logs}")


def named_weights(model):
    """`{path without the model's name: value}` (a second model in a process is `hacnn_1`)."""
    return {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}


class FirstStep(keras.callbacks.Callback):
    """Keeps the weights after the first training step and stops there."""

    def on_train_batch_end(self, batch, logs=None):
        self.weights = named_weights(self.model)
        self.model.stop_training = True


def test_two_workers_train_like_one_process_write_only_on_the_chief_and_resume(tmp_path, tiny_synthetic):
    out = tmp_path / "out"
    root = pathlib.Path(tiny_synthetic.train["path"].iloc[0]).parent.parent
    # Global batch 16 = 8 images per worker, 3 steps per epoch. The global branch alone (learn_region=false) and
    # evaluation only after the last epoch keep the graph, and the test, small: the time goes into tracing a train
    # step with the all-reduces of synchronised batch norm (default distribute.sync_batch_norm).
    common = [
        "train.epochs=2",
        "train.batch_size=16",
        "eval.every=0",
        "output.tensorboard=false",
        "optimizer.name=sgd",
        "optimizer.learning_rate=0.001",
        "model.learn_region=false",
        *(f"model.{k}={v}".replace(" ", "") for k, v in TINY_MODEL.items()),
    ]
    overrides = [*common, f"output.dir={out}", "distribute.strategy=multi_worker"]

    # 1. Two workers; worker 1 dies (SIGKILL) in the second epoch; then the job's other worker is killed too, as a
    # cluster manager restarts a multi-worker job whose collectives fail. Meanwhile: one step of a single process.
    workers = start_workers(tmp_path / "first", root, overrides, kill=True)
    single = FirstStep()
    fit(
        load_config(None, [*common, f"output.dir={tmp_path / 'single'}"]),
        tiny_synthetic,
        verbose=0,
        extra_callbacks=[single],
    )
    finish(workers, tmp_path / "first", timeout=150, expect=(None, -signal.SIGKILL))  # 0: killed or failed
    assert [p.name for p in committed_backups(out / "backup")] == ["epoch-000001"]

    # 2. Restarted, both workers resume from the chief's backup at epoch 1 (second epoch). Meanwhile a single
    # process resumes from a copy of the same backup and trains the same epoch.
    shutil.copytree(out / "backup", tmp_path / "resumed" / "backup")
    workers = start_workers(tmp_path / "second", root, overrides, kill=False)
    resumed, history = fit(
        load_config(None, [*common, f"output.dir={tmp_path / 'resumed'}"]), tiny_synthetic, verbose=0
    )
    assert history.epoch == [1]
    finish(workers, tmp_path / "second", timeout=150)

    first, second = tmp_path / "first", tmp_path / "second"
    results = [json.loads((second / f"worker{i}.json").read_text()) for i in range(2)]
    assert [r["chief"] for r in results] == [True, False]
    assert [r["epochs"] for r in results] == [[1], [1]]  # epoch 0 is not trained again

    # (a) The workers hold the same weights, bit for bit (all-reduced gradients, synchronised batch norm).
    final = [np.load(second / f"worker{i}.npz") for i in range(2)]
    reference = named_weights(resumed)
    assert set(final[0]) == set(final[1]) == set(reference)
    for name in final[0]:
        np.testing.assert_array_equal(final[0][name], final[1][name], err_msg=name)

    # (b) They match one process with the same global batch and seed. After the first step only float rounding
    # differs (all-reduce summation order; E[x^2] - E[x]^2 in synchronised batch norm): measured 5.4e-7; with
    # per-replica batch norm (sync_batch_norm=false) it is 2.5e-3, so 2e-5 tells the two apart. HA-CNN's training
    # amplifies rounding about 10x per step at this learning rate (batch norm over the pooled features of the channel
    # attention: one process with Keras' synchronised-BN formula drifts from one without it just as much). The single
    # process normalises with TensorFlow's fused batch-norm kernel (FusedBatchNormalization), the workers with Keras'
    # synchronised formula: after the 3 steps of the resumed epoch, both started from the same backup, the measured
    # difference is 3.0e-3 (1.3e-4 when both used Keras' formula): the bound is 1e-2. (Epoch 0 moves the BN
    # statistics by 0.47 and the kernels by up to 7e-3: a resume that lost it would fail on the statistics.)
    step1 = np.load(first / "worker0.step1.npz")
    for name, value in single.weights.items():
        np.testing.assert_allclose(step1[name], value, atol=2e-5, err_msg=name)
    for name, value in reference.items():
        np.testing.assert_allclose(final[0][name], value, atol=1e-2, err_msg=name)
    print(
        f"two workers vs one process: {max(np.abs(step1[k] - v).max() for k, v in single.weights.items()):.2g} "
        f"after one step, {max(np.abs(final[0][k] - v).max() for k, v in reference.items()):.2g} after the "
        f"resumed epoch"
    )

    # (c) Only the chief wrote into output.dir, in both runs; the backup of the last epoch stays (the run is finished).
    for run in (first, second):
        assert (run / "worker1.writes").read_text() == ""
        assert (run / "worker0.writes").read_text() != ""
    assert {p.name for p in out.iterdir()} == {"best.keras", "last.keras", "training_log.csv", "config.yaml", "backup"}
    assert [p.name for p in committed_backups(out / "backup")] == ["epoch-000002"]
    assert len(pd.read_csv(out / "training_log.csv")) == 2  # one row per epoch, the killed one not twice
    assert not list(second.glob("hacnn_tf-worker*"))  # the other worker's scratch directory was removed
