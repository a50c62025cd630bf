"""Every exported format of this project against torchreid's HACNN exported to ONNX (run by ONNX Runtime and
OpenVINO at every precision), with the same weights and the same threads: parity with the Keras model, batch-1
latency and batch-64 throughput, compared precision by precision.

`python -m benchmarks.formats --out benchmarks/results [--threads 2]` exports the paper-sized model (torchreid's
random weights, imported) with `export_all` (int8 calibrated on 100 images of the built-in synthetic set), exports
torchreid's model with `torch.onnx.export` at the first opset of `TORCH_OPSETS` that converts and runs, and runs the
peer as a user of it would deploy it at each precision (`peer_embedders`): float32 (ONNX Runtime, OpenVINO), the
CPU's default (OpenVINO bf16 where the CPU has AVX512-BF16 or AMX) and int8 (NNCF on the same 100 calibration
images). It then times every contender in one process, alternating them round by round
(`benchmarks.harness.interleave`): batch-1 latency in bursts of 10 single-image calls (per image), batch-64 throughput
(TFLite batch-1 files: 64 calls). Parity columns compare embeddings with the Keras model's on the synthetic query and
gallery images, the peer's included; Rank-1 and mAP are on that split (random weights: only their agreement across
formats means something). `--quick` (a smoke run): 2 timed rounds and parity on a tenth of the query and gallery
images.

It prints the machine and the CPU flags that decide the fast paths (AVX512-BF16, AMX, VNNI), the table with each
row's `precision` (`row_precision`) and the goals table (`goals`, `GOALS`): at each precision (f32, bf16, int8) this
project's best row against the peer's best row at the same precision, >= 1.5x its batch-64 images/s and <= 0.6x its
batch-1 latency, each row's mean cosine to the float32 Keras model beside it (>= 0.999, int8 >= 0.998, or the goal
is missed); the same best against best at any precision; the float32 SavedModel in TensorFlow (TF Serving's path)
<= 1.5x the peer's float32 batch-1 latency; the bf16 SavedModel >= 1.0x the peer's bf16 batch-64 throughput; TFLite
int8 <= 0.6x TFLite fp32 at batch 1. Writes `formats.csv`, `formats.md`, `formats_goals.csv` and `formats_goals.md`
(atomically) under `--out` (`formats_fpmath_bf16*` with the variable below).

TensorFlow's oneDNN reads `ONEDNN_DEFAULT_FPMATH_MODE` at start-up: run the module once more with
`ONEDNN_DEFAULT_FPMATH_MODE=BF16` to time the float32 SavedModel with bf16 math (the other rows are unaffected).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import tempfile
from collections.abc import Callable, Mapping

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
# The precisions the goals compare at, and the mean cosine to the float32 Keras model a row needs at each.
PRECISIONS = ("f32", "bf16", "int8")
MIN_COSINE = {"f32": 0.999, "bf16": 0.999, "int8": 0.998}
# A name part that makes a row integer-quantised (its float parts may run at its `@` precision).
QUANTIZED = ("int8", "uint8", "dynamic")
EQUAL_PRECISION_SPEEDUP, EQUAL_PRECISION_LATENCY = 1.5, 0.6


@dataclasses.dataclass(frozen=True)
class Goal:
    """One comparison of the goals table: `numerator / denominator` of `column`, which must reach `bound`
    (throughput) or stay under it (latency). A row given as None is the best row of its side (this project's rows
    for the numerator, the peer's for the denominator) at `precision` (None: at any), chosen among the rows whose mean
    cosine meets `MIN_COSINE` at their precision (among all of that side's timed rows if none does). `met` needs the
    ratio within its bound and both rows' cosines at their bounds."""

    numerator: str | None
    denominator: str | None
    column: str
    bound: float
    precision: str | None = None

    @property
    def text(self) -> str:
        return f"{'>=' if self.column == 'throughput' else '<='} {self.bound:g}x"


GOALS = {
    **{
        f"{precision}: best vs peer's best, {what}": Goal(None, None, column, bound, precision)
        for precision in PRECISIONS
        for what, column, bound in (
            ("batch-64 img/s", "throughput", EQUAL_PRECISION_SPEEDUP),
            ("batch-1 latency", "latency_ms", EQUAL_PRECISION_LATENCY),
        )
    },
    "any precision: best vs peer's best, batch-64 img/s": Goal(None, None, "throughput", EQUAL_PRECISION_SPEEDUP),
    "any precision: best vs peer's best, batch-1 latency": Goal(None, None, "latency_ms", EQUAL_PRECISION_LATENCY),
    # TF Serving's path: the float32 SavedModel in TensorFlow against the peer's float32 at batch 1.
    "SavedModel fp32 under TF Serving's loader vs peer's best f32, batch-1 latency": Goal(
        "saved_model-fp32:tf_serving", None, "latency_ms", 1.5, "f32"
    ),
    "SavedModel bf16 (TensorFlow) vs peer's best bf16, batch-64 img/s": Goal(
        "saved_model-bf16", None, "throughput", 1.0, "bf16"
    ),
    "TFLite int8 vs TFLite fp32, batch-1 latency": Goal("tflite-int8", "tflite-fp32", "latency_ms", 0.6, "int8"),
}


def row_precision(name: str) -> str:
    """The precision a row computes in, from its name: `int8` for integer-quantised formats (`QUANTIZED`, the peer's
    `-int8` too, whatever the `@` precision of their float parts), else the `@` precision (OpenVINO's compiled one,
    e.g. `openvino-fp32@bf16`), else `bf16` or `fp16` for those exports, else `f32` (the Keras model, the peer in
    float32, and TFLite fp16 files, whose float16 weights the CPU dequantises to float32)."""
    base, _, compiled = name.partition("@")
    parts = base.split("-")
    if any(part in QUANTIZED for part in parts):
        return "int8"
    if compiled:
        return compiled
    if "bf16" in parts:
        return "bf16"
    if parts[0].startswith("saved_model") and "fp16" in parts:
        return "fp16"
    return "f32"


def goals(table: pd.DataFrame) -> pd.DataFrame:
    """The `GOALS` rows from a table indexed by contender with `throughput` (img/s), `latency_ms` and `mean_cosine`
    columns: `numerator`, `denominator` (the rows compared, see `Goal`), `ratio`, `goal`, their cosines
    (`numerator_cosine`, `denominator_cosine`), `min_cosine` (the numerator's bound) and `met`. A goal without timed
    rows gets a NaN ratio and `met` False."""
    peer = table.index.str.startswith(PEER)
    precision = pd.Series([row_precision(name) for name in table.index], index=table.index)
    cosine = table["mean_cosine"] if "mean_cosine" in table else pd.Series(np.nan, index=table.index)
    rows = {}
    for name, goal in GOALS.items():
        numerator = goal.numerator or _best(table, ~peer, goal, precision, cosine)
        denominator = goal.denominator or _best(table, peer, goal, precision, cosine)
        values = table[goal.column]
        ratio = values.get(numerator, np.nan) / values.get(denominator, np.nan) if numerator and denominator else np.nan
        bounds = [MIN_COSINE.get(precision.get(row), np.nan) if row else np.nan for row in (numerator, denominator)]
        cosines = [cosine.get(row, np.nan) if row else np.nan for row in (numerator, denominator)]
        within = ratio >= goal.bound if goal.column == "throughput" else ratio <= goal.bound
        met = bool(np.isfinite(ratio) and within and all(c >= b for c, b in zip(cosines, bounds)))
        rows[name] = {
            "numerator": numerator,
            "denominator": denominator,
            "ratio": ratio,
            "goal": goal.text,
            "numerator_cosine": cosines[0],
            "denominator_cosine": cosines[1],
            "min_cosine": bounds[0],
            "met": met,
        }
    result = pd.DataFrame.from_dict(rows, orient="index")
    result.index.name = "comparison"
    return result


def _best(table: pd.DataFrame, side: np.ndarray, goal: Goal, precision: pd.Series, cosine: pd.Series) -> str | None:
    """The row of `side` at `goal.precision` (any if None) with the highest throughput or the lowest latency, among
    those whose cosine meets their precision's bound if any does; None if none was timed."""
    candidates = side & (precision.isin(PRECISIONS) if goal.precision is None else precision == goal.precision)
    values = table.loc[candidates, goal.column].dropna()
    if values.empty:
        return None
    accurate = values[[cosine.get(row, np.nan) >= MIN_COSINE[precision[row]] for row in values.index]]
    values = accurate if not accurate.empty else values
    return values.idxmax() if goal.column == "throughput" else values.idxmin()


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
                torch.onnx.export(
                    reference,
                    (x,),
                    str(path),
                    opset_version=opset,
                    dynamo=True,
                    input_names=["images"],
                    output_names=["embedding"],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
                )
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = session.run(None, {"images": x.numpy()})[0]
            if np.abs(got - expected).max() <= 1e-4:
                return path, opset
            errors.append(f"opset {opset}: output differs by {np.abs(got - expected).max():.2e}")
        except Exception as error:  # noqa: BLE001 - the next opset is tried, all errors reported
            errors.append(f"opset {opset}: {type(error).__name__}: {str(error)[:300]}")
    raise RuntimeError("torch.onnx.export of torchreid's HACNN failed: " + "; ".join(errors))


def format_embedders(folders: Mapping[str, pathlib.Path], num_threads: int) -> dict[str, Callable]:
    """`{row name: embedder}` of each exported folder (its manifest's model, run by its format's embedder in
    `hacnn_tf.export.formats.REGISTRY`), OpenVINO at float32 and at the CPU's default precision."""
    from hacnn_tf.export.formats import OPENVINO, REGISTRY, SAVED_MODEL

    embedders = {}
    for name, folder in folders.items():
        path = folder / json.loads((folder / "manifest.json").read_text())["model"]
        family = REGISTRY[name].family
        embedder = family.load()
        if family is SAVED_MODEL:
            embedders[name] = embedder(path, batch_size=THROUGHPUT_BATCH)
        elif family is OPENVINO:
            embedders[name] = embedder(path, "f32", num_threads=num_threads)
            default = embedder(path, num_threads=num_threads)
            if default.inference_precision != "f32":
                embedders[f"{name}@{default.inference_precision}"] = default
        else:
            embedders[name] = embedder(path, num_threads=num_threads)
    return embedders


def torchreid_inputs(pixels: np.ndarray) -> np.ndarray:
    """`(N, H, W, 3)` pixels 0..255 as torchreid's model takes them: ImageNet-normalised (`normalize_images`'
    arithmetic, in NumPy: a TensorFlow call per request would time TensorFlow's dispatch in the peer's rows), NCHW."""
    from hacnn_tf.data.normalization import IMAGENET_MEAN, IMAGENET_STD

    scale = np.float32([1.0 / (255.0 * s) for s in IMAGENET_STD])
    offset = np.float32([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    return np.ascontiguousarray((np.asarray(pixels, np.float32) * scale + offset).transpose(0, 3, 1, 2))


def peer_embedders(
    onnx_path: pathlib.Path, opset: int, calibration_images: np.ndarray, num_threads: int
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """`{row name: pixels -> embeddings}` of torchreid's ONNX model at every precision, as a user of the peer would
    deploy it: ONNX Runtime (float32); OpenVINO at float32 and at the CPU's default precision (bf16 with
    AVX512-BF16 or AMX); and OpenVINO int8, quantised by NNCF (`nncf.quantize`, its defaults, as
    `hacnn_tf.export.quantize_openvino` quantises ours) on the same `calibration_images`, at float32 and at the default
    precision for what stays float. OpenVINO compiles with `PERFORMANCE_HINT: LATENCY` and `num_threads`, as
    `OpenVINOEmbedder` does. Each call runs `THROUGHPUT_BATCH` images at a time."""
    import nncf
    import onnxruntime as ort
    import openvino as ov

    from hacnn_tf.runtime.base import embed_in_batches

    core = ov.Core()
    prefix = f"{PEER}-onnx{opset}"
    float_model = core.read_model(str(onnx_path))
    int8_model = nncf.quantize(
        core.read_model(str(onnx_path)),
        nncf.Dataset([torchreid_inputs(image[None]) for image in calibration_images]),
        subset_size=len(calibration_images),
    )
    session = ort.InferenceSession(str(onnx_path), _ort_options(num_threads), providers=["CPUExecutionProvider"])
    runs = {f"{prefix}-ort": lambda x: session.run(None, {"images": x})[0]}
    for suffix, model in (("openvino", float_model), ("openvino-int8", int8_model)):
        for precision in ("f32", None):
            compiled = core.compile_model(
                model,
                "CPU",
                {
                    **({} if precision is None else {"INFERENCE_PRECISION_HINT": precision}),
                    "INFERENCE_NUM_THREADS": num_threads,
                    "PERFORMANCE_HINT": "LATENCY",
                },
            )
            compiled_precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            if precision is None and compiled_precision == "f32":
                continue  # the CPU's default is float32: the row above
            request = compiled.create_infer_request()
            runs[f"{prefix}-{suffix}" + ("" if precision else f"@{compiled_precision}")] = lambda x, r=request: r.infer(
                [x]
            )[0].copy()
    dim = session.get_outputs()[0].shape[-1]
    return {
        name: lambda pixels, run=run: embed_in_batches(
            lambda chunk: run(torchreid_inputs(chunk)), pixels, THROUGHPUT_BATCH, dim
        )
        for name, run in runs.items()
    }


def tf_serving_embedders(
    saved_model_dir: pathlib.Path, scratch: pathlib.Path, num_threads: int
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """`{row name: pixels -> embeddings}` of the float32 SavedModel's `embed_images` as TF Serving runs it: in a TF1
    session (`tf.compat.v1.saved_model.loader.load`) with `num_threads` intra-op threads and the inter-op pool at
    the server's default (TensorFlow's choice, one thread per core: independent branches such as the Inception
    streams run side by side), as `tensorflow_model_server --tensorflow_intra_op_parallelism=N` sets them,
    `saved_model-fp32:tf_serving`; the same with one inter-op thread (`--tensorflow_inter_op_parallelism=1`: the
    nodes run one after another), `saved_model-fp32:tf_serving_inter_op_1`; and the same signature re-exported
    inside an XLA-compiled function (`jit_compile=True`, which `tensorflow_model_server` runs only with
    `--xla_cpu_compilation_enabled`), `saved_model-fp32:tf_serving_xla`. `benchmarks.serving_latency` times the
    settings that need their own process (oneDNN, XLA auto-clustering). Each call runs `THROUGHPUT_BATCH` images
    at a time."""
    import tensorflow as tf

    from hacnn_tf.runtime.base import embed_in_batches
    from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT

    loaded = tf.saved_model.load(str(saved_model_dir))
    signature = loaded.signatures[IMAGES_SIGNATURE]
    spec = signature.structured_input_signature[1][IMAGES_INPUT]
    module = tf.Module()
    module.loaded = loaded
    compiled = tf.function(
        lambda images: signature(**{IMAGES_INPUT: images})[OUTPUT], jit_compile=True, autograph=False
    )
    xla_dir = scratch / "saved_model-fp32-xla"
    tf.saved_model.save(
        module,
        str(xla_dir),
        signatures={
            IMAGES_SIGNATURE: tf.function(
                lambda images: {OUTPUT: compiled(images)},
                input_signature=[tf.TensorSpec(spec.shape, spec.dtype, IMAGES_INPUT)],
            )
        },
    )
    embedders = {}
    for name, folder, (intra, inter) in (
        ("saved_model-fp32:tf_serving", saved_model_dir, (num_threads, 0)),
        ("saved_model-fp32:tf_serving_inter_op_1", saved_model_dir, (num_threads, 1)),
        ("saved_model-fp32:tf_serving_xla", xla_dir, (num_threads, 0)),
    ):
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter)
        session = tf.compat.v1.Session(graph=tf.Graph(), config=config)
        with session.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(folder))
        served = meta_graph.signature_def[IMAGES_SIGNATURE]
        feed, fetch = served.inputs[IMAGES_INPUT].name, served.outputs[OUTPUT].name
        dim = int(signature.structured_outputs[OUTPUT].shape[-1])
        embedders[name] = lambda pixels, s=session, i=feed, o=fetch, d=dim: embed_in_batches(
            lambda chunk: s.run(o, {i: chunk}), np.asarray(pixels, np.float32), THROUGHPUT_BATCH, d
        )
    return embedders


def folder_size_mb(folder: pathlib.Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json") / 2**20


def parity_rows(model, embedders: Mapping[str, Callable], query: pd.DataFrame, gallery: pd.DataFrame) -> pd.DataFrame:
    """Per embedder: max abs diff, mean/min cosine against the Keras model, Rank-1 and mAP on query/gallery."""
    from hacnn_tf.data.pipeline import load_pixels
    from hacnn_tf.evaluation.distance import compute_distance_matrix
    from hacnn_tf.evaluation.metrics import evaluate
    from hacnn_tf.export.all import parity
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    pixels_q, pixels_g = load_pixels(query, INPUT_SIZE), load_pixels(gallery, INPUT_SIZE)
    rows = {}
    for name, embedder in {"keras": KerasEmbedder(model), **embedders}.items():
        features_q, features_g = embedder(pixels_q), embedder(pixels_g)
        if name == "keras":
            reference = np.concatenate([features_q, features_g])
        result = evaluate(compute_distance_matrix(features_q, features_g), query, gallery, ranks=(1,))
        rows[name] = {
            **parity(np.concatenate([features_q, features_g]), reference),
            "rank1": float(result["rank1"]),
            "mAP": float(result["mAP"]),
        }
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
        rows[name] = {
            "latency_ms": 1000 * stats[f"{name}|1"]["median_s"] / BURST,
            "throughput": stats[f"{name}|64"]["images_per_s"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results", help="folder for formats.csv and formats.md")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (medians reported)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 timed rounds, parity on a tenth of the query and gallery images",
    )
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import torch

    torch.set_num_threads(args.threads)
    from hacnn_tf.data import synthetic
    from hacnn_tf.data.datasets import load_dataset
    from hacnn_tf.data.pipeline import load_pixels
    from hacnn_tf.evaluation.metrics import write_results
    from hacnn_tf.export import FORMATS, export_all
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        reference, model = reference_and_port(seed=0)
        dataset = load_dataset("market1501", synthetic.generate(scratch / "synthetic", seed=0))
        calibration = load_pixels(dataset.train.sample(100, random_state=0), INPUT_SIZE)
        folders = export_all(model, scratch / "formats", FORMATS, calibration_images=calibration)
        torch_onnx, opset = export_torchreid_onnx(reference, scratch / "torchreid.onnx")
        embedders = format_embedders(folders, args.threads)
        query, gallery = (
            (split.sample(frac=0.1, random_state=0) for split in (dataset.query, dataset.gallery))
            if args.quick
            else (dataset.query, dataset.gallery)
        )
        table = parity_rows(model, embedders, query, gallery)
        sizes = {name: folder_size_mb(folders[name.split("@")[0]]) for name in embedders}
        table["size_mb"] = pd.Series(sizes)

        peers = peer_embedders(torch_onnx, opset, calibration, args.threads)
        serving = tf_serving_embedders(
            folders["saved_model-fp32"]
            / json.loads((folders["saved_model-fp32"] / "manifest.json").read_text())["model"],
            scratch,
            args.threads,
        )
        table = pd.concat([table, parity_rows(model, {**serving, **peers}, query, gallery).drop(index="keras")])
        # torchreid's eager model is timed by benchmarks.run: beside the other runtimes' thread pools in this
        # process it ran 20x slower than alone (1 s per image), which would measure the pools, not the model.
        contenders = {
            **peers,
            "keras": KerasEmbedder(model, batch_size=THROUGHPUT_BATCH),
            **serving,
            **{name: embedder for name, embedder in embedders.items() if name.split("@")[0] not in NOT_CPU_TIMED},
        }
        speed = speed_rows({name: (run, run) for name, run in contenders.items()}, repeats)
    table = table.join(speed, how="outer")
    table.index.name = "contender"
    fpmath = os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "")
    print(
        f"Machine: {machine_description()}; {args.threads} threads everywhere; "
        f"ONEDNN_DEFAULT_FPMATH_MODE={fpmath or 'unset'}; torchreid exported at opset {opset}"
        f"{'; --quick' if args.quick else ''}."
    )
    table.insert(0, "precision", [row_precision(name) for name in table.index])
    print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    goal_table = goals(table)
    print(
        "\nGoals (each precision against the peer's same precision; the rows' mean cosines to the float32 Keras "
        "model beside them):"
    )
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
