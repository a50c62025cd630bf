"""What training refuses before its first step, each with an error that names the field or file and what to do: bad
config values, data that evaluation cannot rank, a run in `output.dir` it would overwrite, a backup that does not
read, a second process in the same run; and what it cleans up or keeps: leftovers of killed writes, a finished run,
a NaN epoch."""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import re
import shutil
import types
import uuid

import keras
import numpy as np
import pandas as pd
import pytest

import training.fit
from hacnn_tf import trainer
from hacnn_tf.callbacks import BackupError, committed_backups, restore_backup, write_backup
from hacnn_tf.config import Config, load_config
from hacnn_tf.errors import MissingExtraError
from hacnn_tf.run_folder import open_run, start_over
from hacnn_tf.trainer import fit

# Each override and (a part of) its error.
BAD_VALUES = {
    "train.epochs=0": "train.epochs must be a positive integer; got 0",
    "train.batch_size=abc": "train.batch_size must be a positive integer; got 'abc'",
    "train.batch_size=0": "train.batch_size must be a positive integer; got 0",
    "train.batch_size=-8": "train.batch_size must be a positive integer; got -8",
    "train.batch_size=8.5": "train.batch_size must be a positive integer; got 8.5",
    "train.epochs=true": "train.epochs must be a positive integer; got True",
    "optimizer.learning_rate=-0.001": "optimizer.learning_rate must be a positive number; got -0.001",
    "optimizer.learning_rate=fast": "optimizer.learning_rate must be a positive number; got 'fast'",
    "train.flip=maybe": "train.flip must be true or false; got 'maybe'",
    "eval.metric=manhattan": "eval.metric must be 'euclidean' or 'cosine'; got 'manhattan'",
    "eval.ranks=[0, 5]": "eval.ranks must be a non-empty list of positive integers; got [0, 5]",
    "eval.every=-1": "eval.every must be an integer >= 0",
    "train.num_instances=0": "train.num_instances must be null (uniform batches) or an integer >= 2",
    "train.num_instances=1": "train.num_instances must be null (uniform batches) or an integer >= 2",
    "optimizer.name=rmsprop": "optimizer.name must be 'adam' or 'sgd'; got 'rmsprop'",
    "optimizer.beta_1=1.0": "optimizer.beta_1 must be a number in [0, 1); got 1.0",
    "optimizer.weight_decay=-1": "optimizer.weight_decay must be a number >= 0; got -1",
    "loss.label_smoothing=1": "loss.label_smoothing must be a number in [0, 1); got 1",
    "schedule.milestones=[1.5]": "schedule.milestones must be an increasing list of fractions",
    "schedule.milestones=[0.75, 0.5]": "schedule.milestones must be an increasing list",
    "schedule.gamma=0": "schedule.gamma must be a positive number; got 0",
    "model.input_size=[100, 64]": "model.input_size must be [height, width], positive multiples of 32; got [100, 64]",
    "model.nchannels=[128, 256]": "model.nchannels must be three channel counts",
    "train.seed=-1": "train.seed must be an integer >= 0; got -1",
    "output.dir=''": "output.dir must be a non-empty path; got ''",
    "data.options=[1]": "data.options must be a mapping",
    # Fields that do not go together.
    "loss.softmax=false": "loss.softmax and loss.triplet are both false",
    "loss.triplet=true": "loss.triplet needs P x K batches (K >= 2 images of each identity): set train.num_instances",
}


@pytest.mark.parametrize("override", BAD_VALUES)
def test_a_bad_config_value_is_refused_naming_the_field_and_the_value(override):
    with pytest.raises(ValueError, match=re.escape(BAD_VALUES[override])):
        load_config(None, [override])


def test_config_combinations_and_numbers_yaml_1_1_reads_as_strings():
    with pytest.raises(ValueError, match=r"train.batch_size must be a multiple of train.num_instances \(4\).*got 30"):
        load_config(None, ["train.num_instances=4", "train.batch_size=30"])
    with pytest.raises(ValueError, match="at least 2 identities .* got 4"):
        load_config(None, ["loss.triplet=true", "train.num_instances=4", "train.batch_size=4"])
    # PyYAML leaves 5e-4 a string; the config reads it as the number it is.
    assert load_config(None, ["optimizer.learning_rate=5e-4"]).optimizer.learning_rate == 5e-4
    assert load_config(None, ["optimizer.learning_rate=1.0e3"]).optimizer.learning_rate == 1000.0


def tiny(tmp_path: pathlib.Path, *overrides: str) -> Config:
    return load_config(
        None,
        [
            f"output.dir={tmp_path / 'run'}",
            "train.epochs=2",
            "train.batch_size=8",
            "output.tensorboard=false",
            *overrides,
        ],
    )


def test_fit_checks_the_config_and_the_data_before_writing_anything(tmp_path, tiny_synthetic):
    config = tiny(tmp_path)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size="abc"))  # by hand
    with pytest.raises(ValueError, match="train.batch_size must be a positive integer; got 'abc'"):
        fit(config, tiny_synthetic)
    gallery = len(tiny_synthetic.gallery)
    no_match = dataclasses.replace(tiny_synthetic, query=tiny_synthetic.query.assign(pid=lambda q: q["pid"] + 10**6))
    one_camera = dataclasses.replace(
        tiny_synthetic, gallery=tiny_synthetic.gallery.assign(camid=0), query=tiny_synthetic.query.assign(camid=0)
    )
    cases = [
        (
            tiny(tmp_path, f"eval.ranks=[1, {gallery + 1}]"),
            tiny_synthetic,
            rf"eval.ranks must not exceed the {gallery} gallery images; got \[1, {gallery + 1}\]",
        ),
        (tiny(tmp_path), no_match, "no query identity is in the gallery under another camera"),
        (tiny(tmp_path), one_camera, "no query identity is in the gallery under another camera"),
        (
            tiny(tmp_path, "train.batch_size=100000"),
            tiny_synthetic,
            f"train.batch_size must not exceed the {len(tiny_synthetic.train)} training images; got 100000",
        ),
        (
            tiny(tmp_path, "loss.triplet=true", "train.num_instances=2", "train.batch_size=40"),
            tiny_synthetic,
            r"train.batch_size / train.num_instances = 20 identities per P x K batch, but the training set has 8",
        ),
    ]
    for config, dataset, message in cases:
        with pytest.raises(ValueError, match=message):
            fit(config, dataset)
    assert not (tmp_path / "run").exists()


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def finished_run(tmp_path: pathlib.Path, epochs: int = 2, *overrides: str) -> tuple[Config, pathlib.Path]:
    """A run folder as a finished run of `epochs` leaves it (a small model stands for HA-CNN)."""
    config = tiny(tmp_path, f"train.epochs={epochs}", *overrides)
    run_dir = pathlib.Path(config.output.dir)
    run_dir.mkdir(parents=True)
    log = run_dir / "training_log.csv"
    pd.DataFrame({"epoch": range(epochs), "loss": np.linspace(2, 1, epochs), "val_mAP": [0.5] * epochs}).to_csv(
        log, index=False
    )
    for name in ("best.keras", "last.keras"):
        small_model().save(run_dir / name)
    write_backup(run_dir / "backup", epochs, small_model(), {"config": config.to_dict(), "best": 0.5}, [log])
    (run_dir / "backup" / "lock").touch()
    return config, run_dir


def contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_finished_run_is_not_trained_again_and_says_so(tmp_path, tiny_synthetic, caplog, monkeypatch):
    config, run_dir = finished_run(tmp_path)
    before = contents(run_dir)
    monkeypatch.setattr(trainer, "_fit", lambda *args: pytest.fail("a finished run was trained again"))
    with caplog.at_level(logging.WARNING, logger="hacnn_tf.trainer"):
        model, history = fit(config, tiny_synthetic, verbose=0)
    assert re.search(
        r"holds a finished run of 2 epochs \(train.epochs: 2\): nothing to train. Raise train.epochs "
        r"to continue it, or rerun with --overwrite",
        caplog.text,
    )
    assert history.epoch == [0, 1] and history.history["val_mAP"] == [0.5, 0.5]
    assert isinstance(model, keras.Model)
    assert contents(run_dir) == before  # nothing written, nothing deleted


def test_a_run_it_cannot_resume_is_refused_not_overwritten(tmp_path, tiny_synthetic):
    config = tiny(tmp_path)
    run_dir = pathlib.Path(config.output.dir)
    run_dir.mkdir()
    # A run finished by an earlier version (Keras' BackupAndRestore deleted its backup at the end).
    for name in ("best.keras", "last.keras", "training_log.csv"):
        (run_dir / name).write_bytes(b"the old run")
    with pytest.raises(
        FileExistsError,
        match=rf"output.dir {re.escape(str(run_dir))} holds a run \(best.keras, "
        rf"last.keras, training_log.csv\) without the backup/ folder .*"
        rf"--overwrite",
    ):
        fit(config, tiny_synthetic)
    # A run killed under an earlier version: a Keras BackupAndRestore backup.
    (run_dir / "backup").mkdir()
    (run_dir / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
    with pytest.raises(
        FileExistsError,
        match=r"training_metadata.json is a backup in the format of Keras' "
        r"BackupAndRestore .* --overwrite",
    ):
        fit(config, tiny_synthetic)
    assert contents(run_dir) == {
        "best.keras": b"the old run",
        "last.keras": b"the old run",
        "training_log.csv": b"the old run",
        "backup/training_metadata.json": b'{"epoch": 1}',
    }


def test_overwrite_moves_the_old_run_aside(tmp_path, tiny_synthetic, monkeypatch):
    config, run_dir = finished_run(tmp_path)
    before = contents(run_dir)
    trained = []
    monkeypatch.setattr(trainer, "_fit", lambda config, dataset, strategy, role, run, *rest: trained.append(run))
    fit(config, tiny_synthetic, overwrite=True)
    (moved,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert contents(moved) == before  # the old run, whole
    assert trained[0].initial_epoch == 0 and trained[0].best is None  # a new run from scratch
    assert {p.name for p in run_dir.iterdir()} == {"backup", "config.yaml"}
    assert start_over(run_dir).name.startswith("run.old-") and len(list(tmp_path.glob("run.old-*"))) == 2
    # The command line: --overwrite reaches fit.
    calls = []
    monkeypatch.setattr(trainer, "fit", lambda config, overwrite, **options: calls.append(overwrite))
    training.fit.main(["--set", f"output.dir={run_dir}", "--overwrite"])
    training.fit.main(["--set", f"output.dir={run_dir}"])
    assert calls == [True, False]


def test_a_resumed_run_may_only_change_the_epochs(tmp_path):
    config, run_dir = finished_run(tmp_path, 2)
    with open_run(tiny(tmp_path, "train.epochs=5")) as run:  # more epochs: it continues
        assert run.initial_epoch == 2 and run.best == 0.5
    with pytest.raises(
        ValueError,
        match=r"holds a run of 2 epochs trained with other settings, which resuming "
        r"cannot change \(optimizer.learning_rate: 0.0005 -> 0.01; train.seed: "
        r"0 -> 3\): rerun with the run's settings .* --overwrite",
    ):
        with open_run(tiny(tmp_path, "optimizer.learning_rate=0.01", "train.seed=3")):
            pass


def test_a_second_process_cannot_train_into_the_same_run(tmp_path):
    config, run_dir = finished_run(tmp_path)
    with open_run(config):
        with pytest.raises(RuntimeError, match=r"backup/lock is locked: another process is using"):
            with open_run(config):
                pass
        with pytest.raises(RuntimeError, match="is locked"):
            start_over(run_dir)
    with open_run(config):  # released when the first one ends (or dies: the kernel drops the lock)
        pass


def corrupt_truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[:96])  # what a full disk left under Keras' BackupAndRestore


def corrupt_flip(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # "bad object header version number"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name, corrupt, reason",
    [
        ("model.keras", corrupt_truncate, r"its content is not what was written \(SHA-256"),
        ("model.keras", corrupt_flip, r"its content is not what was written \(SHA-256"),
        ("model.keras", pathlib.Path.unlink, r"cannot be read \(No such file or directory\)"),
        (
            "state.json",
            lambda path: path.write_text("{not json"),
            r"the backup's state cannot be read \(JSONDecodeError",
        ),
        ("training_log.csv", corrupt_flip, r"its content is not what was written"),
    ],
)
def test_a_backup_that_does_not_read_is_an_error_naming_the_file_and_what_to_do(tmp_path, name, corrupt, reason):
    config, run_dir = finished_run(tmp_path)
    unit = committed_backups(run_dir / "backup")[-1]
    corrupt(unit / name)
    with pytest.raises(
        BackupError,
        match=rf"^{re.escape(str(unit / name))}: {reason}.*The run cannot resume from "
        rf"this backup: rerun with --overwrite",
    ):
        with open_run(config):
            pass


def test_an_unreadable_newest_backup_is_not_silently_replaced_by_an_older_one(tmp_path):
    config, run_dir = finished_run(tmp_path, 3)
    newest = committed_backups(run_dir / "backup")[-1]
    older = newest.with_name("epoch-000002")
    shutil.copytree(newest, older)  # as a kill between a commit and the deletion of the older backup leaves it
    (older / "state.json").write_text((older / "state.json").read_text().replace('"epoch": 3', '"epoch": 2'))
    corrupt_truncate(newest / "model.keras")
    with pytest.raises(BackupError, match=rf"or delete {re.escape(str(newest))} to resume from epoch-000002"):
        with open_run(config):
            pass


def test_a_backup_of_another_model_or_optimizer_is_an_error_naming_it(tmp_path):
    config, run_dir = finished_run(tmp_path)
    other_layers = keras.Sequential([keras.Input((4,)), keras.layers.Dense(7)])
    other_layers.compile(optimizer="adam", loss="mse")
    other_optimizer = small_model()
    other_optimizer.compile(optimizer="sgd", loss="mse")  # Keras would only warn, and keep SGD's fresh state
    with open_run(config) as run:
        for model in (other_layers, other_optimizer):
            with pytest.raises(
                BackupError,
                match=rf"{re.escape(str(run.backup.model_path))}: cannot be loaded into "
                rf"the configured model",
            ):
                restore_backup(model, run.backup)


def test_leftovers_of_killed_writes_are_removed_at_the_next_start(tmp_path):
    config, run_dir = finished_run(tmp_path)
    for name in ("last.keras", "best.keras", "training_log.csv", "config.yaml"):
        stem, suffix = name.split(".")
        (run_dir / f".{stem}.{uuid.uuid4().hex}.partial.{suffix}").write_bytes(b"half")
    for name in (f".staging-{uuid.uuid4().hex}", f".trash-{uuid.uuid4().hex}"):
        (run_dir / "backup" / name).mkdir()
        (run_dir / "backup" / name / "model.keras").write_bytes(b"half")
    (run_dir / ".keep").write_text("not ours")  # hidden files that are not partial writes stay
    log = run_dir / "training_log.csv"
    log.write_text(log.read_text() + "2,0.9,0.")  # a row of an epoch whose backup was never committed, cut short
    with open_run(config):
        pass
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".keep",
        "backup",
        "best.keras",
        "last.keras",
        "training_log.csv",
    ]
    assert sorted(p.name for p in (run_dir / "backup").iterdir()) == ["epoch-000002", "lock"]
    assert pd.read_csv(log)["epoch"].tolist() == [0, 1]  # as the backup recorded it


@pytest.mark.parametrize(
    "steps_done, loss, reason", [(5, math.nan, "the loss is not finite"), (2, 0.5, "stopped after 2 of 5 steps")]
)
def test_an_epoch_that_is_not_finite_or_whole_is_not_backed_up(tmp_path, caplog, steps_done, loss, reason):
    config, run_dir = finished_run(tmp_path, 2, "train.epochs=5")
    model = small_model()
    with open_run(config) as run:
        restore_backup(model, run.backup)
        no_data = types.SimpleNamespace(query=None, gallery=None)
        callbacks = [
            c
            for c in trainer.build_callbacks(config, no_data, run_dir, run)
            if not isinstance(c, trainer.ReIDEvaluation)
        ]
        before = contents(run_dir)
        hooks = keras.callbacks.CallbackList(callbacks, model=model, steps=5)
        hooks.on_train_begin()
        hooks.on_epoch_begin(2)
        for batch in range(steps_done):
            hooks.on_train_batch_end(batch, {"loss": loss})
        with caplog.at_level(logging.WARNING):
            hooks.on_epoch_end(2, {"loss": loss, "val_mAP": math.nan})
        hooks.on_train_end()
    assert f"epoch 3: {reason}; it is not backed up (the backup keeps epoch 2)" in caplog.text
    after = contents(run_dir)
    for name in (n for n in before if n.startswith("backup/")):
        assert after[name] == before[name], name
    assert [p.name for p in committed_backups(run_dir / "backup")] == ["epoch-000002"]
    if math.isnan(loss):  # and last.keras keeps the model finished_run wrote
        assert "last.keras keeps the previous model" in caplog.text and after["last.keras"] == before["last.keras"]


def test_tensorboard_missing_is_refused_before_the_first_step(tmp_path, tiny_synthetic, monkeypatch):
    find_spec = trainer.importlib.util.find_spec
    monkeypatch.setattr(
        trainer.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "tensorboard" else find_spec(name, *args),
    )
    with pytest.raises(
        MissingExtraError,
        match=r"output.tensorboard is true but the tensorboard package is not "
        r"installed: pip install tensorboard .* output.tensorboard=false",
    ):
        fit(tiny(tmp_path, "output.tensorboard=true"), tiny_synthetic)
    assert not (tmp_path / "run").exists()
