"""Every exported format of this project, and torchreid's HACNN exported to ONNX (run by ONNX Runtime and OpenVINO),
with the same weights and the same threads: parity with the Keras model, batch-1 latency and batch-64 throughput.

`python -m benchmarks.formats --out benchmarks/results [--threads 2]` exports the paper-sized model (torchreid's
random weights, imported) with `export_all` (int8 calibrated on the built-in synthetic set), exports torchreid's
model with `torch.onnx.export` at the first opset of `TORCH_OPSETS` that converts and runs, then times every
contender in one process, alternating them round by round (`benchmarks.harness.interleave`): batch-1 latency in
bursts of 10 single-image calls (per image), batch-64 throughput (TFLite files are batch 1: 64 calls). Parity
columns compare embeddings with the Keras model's on the synthetic query and gallery images; Rank-1 and mAP are on
that split (random weights: only their agreement across formats means something). `--quick` (a smoke run): 2 timed
rounds and parity on a tenth of the query and gallery images.

It prints the CPU's flags that decide the fast paths (AVX512-BF16, AMX, VNNI) and the goals table (`goals`): this
project's fastest CPU path against the fastest peer path (torchreid's model through ONNX, in ONNX Runtime or OpenVINO
at float32 or the CPU's default precision) in batch-64 images/s and in batch-1 latency, the bf16 SavedModel in
TensorFlow against that peer at batch 64, and TFLite int8 against TFLite fp32 at batch 1. Writes `formats.csv`,
`formats.md`, `formats_goals.csv` and `formats_goals.md` (atomically) under `--out` (`formats_fpmath_bf16*` with the
variable below).

TensorFlow's oneDNN reads `ONEDNN_DEFAULT_FPMATH_MODE` at start-up: run the module once more with
`ONEDNN_DEFAULT_FPMATH_MODE=BF16` to time the float32 SavedModel with bf16 math (the other rows are unaffected).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from benchmarks.harness import Contender, interleave, machine_description, summarize
from benchmarks.models import INPUT_SIZE, reference_and_port

# torch.onnx.export's TorchScript exporter fails on torchreid's HACNN at every opset (`F.avg_pool2d(x, x.size()[2:])`
# gives a kernel size it cannot make constant); the torch.export-based one (`dynamo=True`, needs onnxscript) converts
# it from opset 18.
TORCH_OPSETS = (18, 20)
BURST = 10
THROUGHPUT_BATCH = 64
# Formats not timed on the CPU (fp16 SavedModels are for GPUs: TensorFlow's CPU float16 convolutions are reference
# code); every other format of `FORMATS` is.
NOT_CPU_TIMED = ("saved_model-fp16",)
PEER = "torchreid"  # the prefix of the peer's rows
# Goals: name -> (numerator row (None: this project's best), denominator row (None: the best peer row), column,
# bound, text). A throughput ratio must reach the bound, a latency ratio stay under it.
GOALS = {
    "fastest CPU path vs fastest peer, batch-64 img/s": (None, None, "throughput", 1.3, ">= 1.3x"),
    "fastest CPU path vs fastest peer, batch-1 latency": (None, None, "latency_ms", 0.8, "<= 0.8x"),
    "bf16 SavedModel (TensorFlow) vs fastest peer, batch-64 img/s": ("saved_model-bf16", None, "throughput", 1.0,
                                                                     ">= 1.0x"),
    "TFLite int8 vs TFLite fp32, batch-1 latency": ("tflite-int8", "tflite-fp32", "latency_ms", 0.6, "<= 0.6x"),
}
def goals(table: pd.DataFrame) -> pd.DataFrame:
    """The `GOALS` rows from a table indexed by contender with `throughput` (img/s) and `latency_ms` columns:
    `numerator`, `denominator` (the rows compared; where a goal names none, this project's best row and the best
    peer row), `ratio`, `goal`, `met`. A goal without timed rows gets a NaN ratio and `met` False."""
    peer = table.index.str.startswith(PEER)
    rows = {}
    for name, (numerator, denominator, column, bound, text) in GOALS.items():
        numerator = numerator or _best(table.loc[~peer, column])
        denominator = denominator or _best(table.loc[peer, column])
        values = table[column]
        ratio = values.get(numerator, np.nan) / values.get(denominator, np.nan) if numerator and denominator \
            else np.nan
        met = bool(np.isfinite(ratio) and (ratio >= bound if column == "throughput" else ratio <= bound))
        rows[name] = {"numerator": numerator, "denominator": denominator, "ratio": ratio, "goal": text, "met": met}
    result = pd.DataFrame.from_dict(rows, orient="index")
    result.index.name = "comparison"
    return result


def _best(values: pd.Series) -> str | None:
    """The row of the highest throughput or the lowest latency, None if none was timed."""
    values = values.dropna()
    if values.empty:
        return None
    return values.idxmax() if values.name == "throughput" else values.idxmin()


def export_torchreid_onnx(reference, path: pathlib.Path) -> tuple[pathlib.Path, int]:
    """torchreid's model (eval mode, NCHW input `images`, dynamic batch) as ONNX at the first opset of
    `TORCH_OPSETS` that exports and gives the module's output in ONNX Runtime; returns `(path, opset)`."""
    import warnings

    import onnxruntime as ort
    import torch

    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, *INPUT_SIZE)).astype(np.float32))
    with torch.no_grad():
        expected = reference(x).numpy()
    errors = []
    for opset in TORCH_OPSETS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(reference, (x,), str(path), opset_version=opset, dynamo=True,
                                  input_names=["images"], output_names=["embedding"],
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = session.run(None, {"images": x.numpy()})[0]
            if np.abs(got - expected).max() <= 1e-4:
                return path, opset
            errors.append(f"opset {opset}: output differs by {np.abs(got - expected).max():.2e}")
        except Exception as error:  # noqa: BLE001 - the next opset is tried, all errors reported
            errors.append(f"opset {opset}: {type(error).__name__}: {str(error)[:300]}")
    raise RuntimeError("torch.onnx.export of torchreid's HACNN failed: " + "; ".join(errors))


def format_embedders(folders: Mapping[str, pathlib.Path], num_threads: int) -> dict[str, Callable]:
    """`{row name: embedder}` of each exported folder (its manifest's model), OpenVINO at float32 and at the CPU's
    default precision."""
    import json

    from hacnn_tf.runtime.onnx import ONNXEmbedder
    from hacnn_tf.runtime.openvino import OpenVINOEmbedder
    from hacnn_tf.runtime.saved_model import SavedModelEmbedder
    from hacnn_tf.runtime.tflite import TFLiteEmbedder

    embedders = {}
    for name, folder in folders.items():
        path = folder / json.loads((folder / "manifest.json").read_text())["model"]
        kind = name.split("-")[0]
        if kind == "saved_model":
            embedders[name] = SavedModelEmbedder(path, batch_size=THROUGHPUT_BATCH)
        elif kind.startswith("tflite"):
            embedders[name] = TFLiteEmbedder(path, num_threads=num_threads)
        elif kind == "onnx":
            embedders[name] = ONNXEmbedder(path, num_threads=num_threads)
        elif kind == "openvino":
            embedders[name] = OpenVINOEmbedder(path, "f32", num_threads=num_threads)
            default = OpenVINOEmbedder(path, num_threads=num_threads)
            if default.inference_precision != "f32":
                embedders[f"{name}@{default.inference_precision}"] = default
    return embedders


def folder_size_mb(folder: pathlib.Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json") / 2**20


def parity_rows(model, embedders: Mapping[str, Callable], query: pd.DataFrame, gallery: pd.DataFrame) -> pd.DataFrame:
    """Per embedder: max abs diff, mean/min cosine against the Keras model, Rank-1 and mAP on query/gallery."""
    from hacnn_tf.evaluation.distance import compute_distance_matrix
    from hacnn_tf.evaluation.metrics import evaluate
    from hacnn_tf.export.all import parity
    from hacnn_tf.export.parity import load_pixels
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    pixels_q, pixels_g = load_pixels(query, INPUT_SIZE), load_pixels(gallery, INPUT_SIZE)
    rows = {}
    for name, embedder in {"keras": KerasEmbedder(model), **embedders}.items():
        features_q, features_g = embedder(pixels_q), embedder(pixels_g)
        if name == "keras":
            reference = np.concatenate([features_q, features_g])
        result = evaluate(compute_distance_matrix(features_q, features_g), query, gallery, ranks=(1,))
        rows[name] = {**parity(np.concatenate([features_q, features_g]), reference),
                      "rank1": float(result["rank1"]), "mAP": float(result["mAP"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def speed_rows(contenders: Mapping[str, tuple[Callable, Callable]], repeats: int) -> pd.DataFrame:
    """`contenders`: `{name: (one image -> embedding, 64 images -> embeddings)}`, timed alternately in one run:
    `latency_ms` (median per image over bursts of `BURST` single-image calls) and `throughput` (img/s at 64)."""
    from benchmarks.models import pixels

    one, batch = pixels(1), pixels(THROUGHPUT_BATCH)
    timed = []
    for name, (run_one, run_batch) in contenders.items():
        timed.append(Contender(f"{name}|1", lambda r=run_one: [r(one) for _ in range(BURST)], BURST))
        timed.append(Contender(f"{name}|64", lambda r=run_batch: r(batch), THROUGHPUT_BATCH))
    stats = summarize(interleave(timed, repeats), {c.name: c.items for c in timed})
    rows = {}
    for name in contenders:
        rows[name] = {"latency_ms": 1000 * stats[f"{name}|1"]["median_s"] / BURST,
                      "throughput": stats[f"{name}|64"]["images_per_s"]}
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results", help="folder for formats.csv and formats.md")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (medians reported)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 timed rounds, parity on a tenth of the query and gallery images")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import torch

    torch.set_num_threads(args.threads)
    from hacnn_tf.data import synthetic
    from hacnn_tf.data.datasets import load_dataset
    from hacnn_tf.export import FORMATS, export_all
    from hacnn_tf.export.parity import load_pixels
    from hacnn_tf.evaluation.metrics import write_results
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        reference, model = reference_and_port(seed=0)
        dataset = load_dataset("market1501", synthetic.generate(scratch / "synthetic", seed=0))
        calibration = load_pixels(dataset.train.sample(100, random_state=0), INPUT_SIZE)
        folders = export_all(model, scratch / "formats", FORMATS, calibration_images=calibration)
        torch_onnx, opset = export_torchreid_onnx(reference, scratch / "torchreid.onnx")
        embedders = format_embedders(folders, args.threads)
        query, gallery = ((split.sample(frac=0.1, random_state=0) for split in (dataset.query, dataset.gallery))
                          if args.quick else (dataset.query, dataset.gallery))
        table = parity_rows(model, embedders, query, gallery)
        sizes = {name: folder_size_mb(folders[name.split("@")[0]]) for name in embedders}
        table["size_mb"] = pd.Series(sizes)

        import onnxruntime as ort
        import openvino as ov

        core = ov.Core()
        # The peer in OpenVINO at float32 and at the CPU's default precision (bf16 with AVX512-BF16 or AMX).
        compiled = {precision: core.compile_model(str(torch_onnx), "CPU", {
            **({} if precision is None else {"INFERENCE_PRECISION_HINT": precision}),
            "INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}) for precision in ("f32", None)}
        default_precision = compiled[None].get_property("INFERENCE_PRECISION_HINT").get_type_name()
        torch_session = ort.InferenceSession(str(torch_onnx), _ort_options(args.threads),
                                             providers=["CPUExecutionProvider"])

        def nchw(pixel_batch):
            from hacnn_tf.layers.preprocessing import normalize_images

            return np.ascontiguousarray(normalize_images(pixel_batch).numpy().transpose(0, 3, 1, 2))

        # torchreid's eager model is timed by benchmarks.run: beside the other runtimes' thread pools in this
        # process it ran 20x slower than alone (1 s per image), which would measure the pools, not the model.
        contenders = {
            f"torchreid-onnx{opset}-ort": lambda p: torch_session.run(None, {"images": nchw(p)})[0],
            f"torchreid-onnx{opset}-openvino": lambda p: compiled["f32"](nchw(p))[0],
            **({} if default_precision == "f32" else {
                f"torchreid-onnx{opset}-openvino@{default_precision}": lambda p: compiled[None](nchw(p))[0]}),
            "keras": KerasEmbedder(model, batch_size=THROUGHPUT_BATCH),
            **{name: embedder for name, embedder in embedders.items() if name.split("@")[0] not in NOT_CPU_TIMED},
        }
        speed = speed_rows({name: (run, run) for name, run in contenders.items()}, repeats)
    table = table.join(speed, how="outer")
    table.index.name = "contender"
    fpmath = os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "")
    print(f"Machine: {machine_description()}; {args.threads} threads everywhere; "
          f"ONEDNN_DEFAULT_FPMATH_MODE={fpmath or 'unset'}; torchreid exported at opset {opset}"
          f"{'; --quick' if args.quick else ''}.")
    print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    goal_table = goals(table)
    print("\nGoals:")
    print(goal_table.to_string(float_format=lambda v: f"{v:.3f}"))
    stem = pathlib.Path(args.out) / f"formats{'_fpmath_' + fpmath.lower() if fpmath else ''}"
    write_results(table, stem, float_format="{:.6g}")
    write_results(goal_table, f"{stem}_goals", float_format="{:.3f}")
    return table


def _ort_options(num_threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    return options


if __name__ == "__main__":
    main()
