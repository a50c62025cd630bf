"""The main job on the built-in synthetic data set: generate, evaluate untrained, train, evaluate, report."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from collections.abc import Sequence

import keras
import pandas as pd

from hacnn_tf.callbacks import TrainingProgress
from hacnn_tf.config import load_config
from hacnn_tf.configs import resolve_config
from hacnn_tf.data import synthetic
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.data.synthetic_frames import FramesConfig, generate_frames
from hacnn_tf.errors import MissingExtraError, missing_extras
from hacnn_tf.evaluation.features import evaluate_model
from hacnn_tf.evaluation.metrics import results_table, write_results
from hacnn_tf.export.all import missing_extras_message, missing_format_extras
from hacnn_tf.export.formats import TFLITE_VARIANTS
from hacnn_tf.jobs.export import export_formats, retrieval_report
from hacnn_tf.jobs.figures import write_demo_figures
from hacnn_tf.jobs.frames import run_frames_demo
from hacnn_tf.model import HACNN
from hacnn_tf.trainer import build_model, fit

METRIC_COLUMNS = ("rank1", "rank5", "rank10", "mAP")
DEMO_CONFIG = resolve_config("demo_synthetic")
# The crop set the demo trains and evaluates on; its camera frames show its test identities.
DEMO_CROPS = synthetic.SyntheticConfig(seed=0)
# What the demo exports (`export_and_compare`).
DEMO_FORMATS = ("saved_model-fp32", *(f"tflite-{variant}" for variant in TFLITE_VARIANTS))


def run_demo(
    workdir: str | os.PathLike,
    config_path: str | os.PathLike = DEMO_CONFIG,
    overrides: Sequence[str] = (),
    verbose: int | str = 0,
    export: bool = True,
) -> pd.DataFrame:
    """Writes the synthetic data set under `workdir/data`, trains under `workdir/train` and returns (and writes to
    `workdir/metrics.{csv,md}`) the table of Rank-1/5/10 and mAP (fractions) of the stages `untrained`, `trained`
    and, with `export`, the exported TFLite models (`tflite_fp32`, `_fp16`, `_dynamic`, `_int8`), whose
    full parity report goes to `workdir/export/parity.{csv,md}`. The figures of the trained model (attention,
    ranked lists, CMC against the untrained model, training curves) go to `workdir/figures/`. The trained model
    then meets the test identities in camera frames (`generate_frames` into `workdir/frames`): `run_frames_demo`
    writes its cross-camera Rank-1 and frame-to-frame association accuracy, and the figure of matched boxes, to
    `workdir/frames_demo/`. With `verbose` 0 training shows `TrainingProgress` (a bar with the ETA, a line per
    epoch) instead of Keras' own progress lines (`verbose` 1 or 2)."""
    workdir = pathlib.Path(workdir)
    if export:  # before anything is trained: the export's extras
        missing = missing_format_extras(DEMO_FORMATS)
        if missing:
            raise MissingExtraError(
                f"hacnn-tf demo exports {', '.join(DEMO_FORMATS)}; " + missing_extras_message(missing)
            )
    root = synthetic.generate(workdir / "data", **dataclasses.asdict(DEMO_CROPS))
    dataset = load_dataset("market1501", root)
    dataset.print_summary()
    config = load_config(config_path, [f"output.dir={workdir / 'train'}", *overrides])

    keras.utils.set_random_seed(int(config.train.seed))
    untrained = build_model(config, dataset.num_train_pids)
    results = {"untrained": evaluate_model(untrained, dataset.query, dataset.gallery)}
    progress = [TrainingProgress()] if verbose == 0 else []
    model, history = fit(config, dataset, verbose=verbose, extra_callbacks=progress)
    # The evaluation callback measured the trained model after the last epoch (eval.every: 0 -> only then).
    results["trained"] = {
        name.removeprefix("val_"): values[-1] for name, values in history.history.items() if name.startswith("val_")
    }

    write_demo_figures(
        model,
        dataset,
        workdir,
        label=f"trained ({len(history.epoch)} epochs)",
        other_curves={"untrained": results["untrained"]["cmc"]},
    )
    run_frames_demo(model, generate_frames(workdir / "frames", FramesConfig(DEMO_CROPS)), workdir / "frames_demo")
    table = results_table(results, percent=False)[list(METRIC_COLUMNS)]
    table.index.name = "stage"
    write_results(table, workdir / "metrics", float_format="{:.3f}")
    if export:
        parity = export_and_compare(model, dataset, workdir / "export")
        exported = parity.drop(index="keras")[list(METRIC_COLUMNS)]
        exported.index = [f"tflite_{name}" for name in exported.index]
        table = pd.concat([table, exported])
        table.index.name = "stage"
        write_results(table, workdir / "metrics", float_format="{:.3f}")
    return table


def export_and_compare(model: HACNN, dataset, export_dir: pathlib.Path, calibration_images: int = 200) -> pd.DataFrame:
    """Exports `model` as `hacnn-tf export` does (`export_formats`: `export_dir/saved_model-fp32/`, the SavedModel
    with warm-up records, and `export_dir/tflite-<variant>/` for the four TFLite variants, int8 calibrated on training
    images, each with its manifest and parity-checked before it is written), and writes the parity report
    `export_dir/parity.{csv,md}` of the TFLite variants on the evaluation split. Returns the report.

    The warm-up records need the `serving` extra; without it the SavedModel has none (TF Serving then warms up on
    its first requests). The export of an earlier run stays until this one has succeeded."""
    warmup = [pathlib.Path(p).read_bytes() for p in dataset.query["path"].iloc[:4]]
    options = {} if missing_extras("serving") else {"warmup_images": warmup}
    tflite = {variant: f"tflite-{variant}" for variant in TFLITE_VARIANTS}
    previous = export_dir.with_name(f".{export_dir.name}.previous")
    if previous.exists():  # a run killed during its export left the export before it here
        shutil.rmtree(export_dir, ignore_errors=True)
        os.replace(previous, export_dir)
    if export_dir.exists():
        os.replace(export_dir, previous)
    try:
        folders = export_formats(
            model, export_dir, list(DEMO_FORMATS), dataset, calibration_images, saved_model_options=options
        )
    except BaseException:
        if previous.exists():
            shutil.rmtree(export_dir, ignore_errors=True)
            os.replace(previous, export_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    # The SavedModel's own check (fresh-process reload equal to 1e-5) stands for it here: the report covers TFLite.
    return retrieval_report(
        model,
        {variant: folders[name] for variant, name in tflite.items()},
        dataset,
        export_dir / "parity",
        num_threads=os.cpu_count(),
    )
