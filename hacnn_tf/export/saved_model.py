"""Versioned SavedModel export for TF Serving, self-checked in a fresh process under TF Serving's own loader
(docs/deployment.md#savedmodel)."""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from hacnn_tf._startup import native_logs_shown, without_native_noise
from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.image_decoding import DEFAULT_MAX_PIXELS
from hacnn_tf.export.child_process import run_child
from hacnn_tf.io_utils import remove_stale_staging, staging_folder
from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.model import HACNN
from hacnn_tf.serving import tf_serving_loader
from hacnn_tf.serving.signatures import (
    BOXES_INPUT,
    BOXES_PIXELS_SIGNATURE,
    BOXES_SIGNATURE,
    BYTES_INPUT,
    FRAME_BYTES_INPUT,
    FRAMES_INPUT,
    IMAGES_INPUT,
    IMAGES_SIGNATURE,
    MAX_BOXES,
    OUTPUT,
    SERVING_SIGNATURE,
)
from hacnn_tf.tracking import ReIDEmbedder, embed_encoded_frames, embed_frame_boxes

__all__ = [
    "BOXES_INPUT",
    "BOXES_PIXELS_SIGNATURE",
    "BOXES_SIGNATURE",
    "BYTES_INPUT",
    "FRAME_BYTES_INPUT",
    "FRAMES_INPUT",
    "IMAGES_INPUT",
    "IMAGES_SIGNATURE",
    "MAX_BOXES",
    "OUTPUT",
    "PRECISIONS",
    "SERVING_SIGNATURE",
    "check_saved_model",
    "export_saved_model",
    "exported_max_boxes",
    "mixed_precision_model",
    "remove_orphaned_staging",
    "row_cosines",
]

SELF_CHECK_TOLERANCE = 1e-5
# The Keras mixed-precision policy of each export precision (None: the model as it is).
PRECISIONS = {"fp32": None, "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# A bf16/fp16 export's self-check: each embedding's cosine with the float32 model's (a max abs diff bound would
# have to allow the 8- or 11-bit mantissa's rounding, ~1e-2, and would then miss a wrong branch normalisation).
HALF_PRECISION_MIN_COSINE = 0.999
SELF_CHECK_BATCHES = (1, 3)
# The box signatures' self-check: frames of these sizes (the bytes signature: two sizes in one request) with boxes
# inside, at the borders, past them, of 1 px, and padding.
SELF_CHECK_FRAME_SIZES = ((150, 110), (90, 170))
SELF_CHECK_BOXES = ((10, 20, 60, 130), (0, 0, 110, 150), (-20, 40, 35, 400), (5.5, 5.2, 6.1, 6.9), (0, 0, 0, 0))
# The name of the constant in the box signatures holding their `max_boxes` (read back by `exported_max_boxes`).
MAX_BOXES_NODE = "max_boxes"
# Staging folders beside the version folders: `.<version>.partial-<random>/`, locked by the exporting process.
STAGING_PREFIX = ".partial-"
# What converters need from the model beside the graph (`write_model_facts`).
MODEL_FACTS_FILE = "assets.extra/hacnn_tf.json"


def _frozen_inference(model: HACNN):
    """`model(model_inputs(model, pixels), training=False)["embedding"]` as a concrete function of `(None, H, W, 3)`
    float32 pixels whose weights are constants instead of variable reads.

    The exported graph then holds no variable handles and reads (three nodes per variable, six variables per
    convolution), and the inference-only arithmetic on the weights (batch norms folded into the convolutions, the
    soft attention's rank-one kernel product) reads constants, which Grappler's constant folding computes once when
    TF Serving (or `tf.saved_model.load`) loads the model instead of on every request."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    height, width = model.input_size
    infer = tf.function(lambda pixels: model(model_inputs(model, pixels), training=False)["embedding"], autograph=False)
    return convert_variables_to_constants_v2(
        infer.get_concrete_function(tf.TensorSpec((None, height, width, 3), tf.float32))
    )


def _embedding_fn(model: HACNN):
    """`images (N, H, W, 3) float32 in [0, 255] -> {"embedding": (N, D)}` with the serving checks: the shape (a
    loaded SavedModel does not enforce its signature's shape, and a wrong rank would reach kernels that abort the
    process), finite pixels, and an empty batch giving an empty `(0, D)` result. One traced function, which every
    signature calls: the model's graph is traced and saved once."""
    height, width = model.input_size
    inference = _frozen_inference(model)

    def embed(images):
        images = tf.ensure_shape(images, (None, height, width, 3), name="check_images_shape")
        images = tf.debugging.assert_all_finite(images, "images holds NaN or infinite pixel values")
        count = tf.shape(images)[0]
        # Convolutions refuse an empty batch; one image of zeros stands in and is sliced away.
        padded = tf.concat([images, tf.zeros((1, height, width, 3), images.dtype)], axis=0)[: tf.maximum(count, 1)]
        embedding = tf.nest.flatten(inference(padded))[0]
        return {OUTPUT: embedding[:count]}

    return tf.function(embed, input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32)], autograph=False)


def _bytes_fn(model: HACNN, embed, max_pixels: int):
    """`image_bytes [N] string -> {"embedding": (N, D)}`: encoded JPEG/PNG/BMP/GIF/WebP decoded and resized in the
    graph by `HACNNPreprocessor`, each refused before decoding when its header declares more than `max_pixels`
    pixels."""
    preprocessor = HACNNPreprocessor(model.input_size, max_pixels=max_pixels)

    def serve(image_bytes):
        nonempty = tf.debugging.assert_greater(
            tf.strings.length(image_bytes), 0, message="image_bytes holds an empty string, not an encoded image"
        )
        with tf.control_dependencies([nonempty]):
            pixels = preprocessor(image_bytes)
        return embed(pixels)

    return serve


def _boxes_fns(model: HACNN, embed, max_pixels: int, max_boxes: int = MAX_BOXES):
    """The `embed_boxes` (`frame_bytes [N]` string, `boxes [N, B, 4]`) and `embed_boxes_pixels` (`frames [N, FH, FW,
    3]` uint8, `boxes`) functions -> `{"embedding": [N, B, D]}`, frames of at most `max_pixels` pixels, rows of at
    most `max_boxes` boxes (refused before anything is decoded or cropped). The boxes are cut and embedded a chunk at
    a time (`hacnn_tf.tracking.embed_boxes`), so a request's memory does not grow with its boxes."""

    def embed_crops(images):
        return embed(images)[OUTPUT]

    def checked_boxes(boxes):
        boxes = tf.ensure_shape(boxes, (None, None, 4), name="check_boxes_shape")
        limit = tf.constant(max_boxes, tf.int32, name=MAX_BOXES_NODE)
        few = tf.debugging.assert_less_equal(
            tf.shape(boxes)[1],
            limit,
            message=f"boxes holds more than max_boxes={max_boxes} boxes per row, the "
            f"limit this model was exported with: send the boxes of a frame in rows of at most {max_boxes}",
        )
        with tf.control_dependencies([few]):
            return tf.identity(boxes)

    def from_bytes(frame_bytes, boxes):
        boxes = checked_boxes(boxes)
        nonempty = tf.debugging.assert_greater(
            tf.strings.length(frame_bytes), 0, message="frame_bytes holds an empty string, not an encoded image"
        )
        with tf.control_dependencies([nonempty]):
            embedding = embed_encoded_frames(
                embed_crops, frame_bytes, boxes, model.input_size, model.embedding_dim, max_pixels
            )
        return {OUTPUT: embedding}

    def from_pixels(frames, boxes):
        boxes = checked_boxes(boxes)
        frames = tf.ensure_shape(frames, (None, None, None, 3), name="check_frames_shape")
        shape = tf.shape(frames, out_type=tf.int64)
        small = tf.debugging.Assert(
            shape[1] * shape[2] <= max_pixels,
            [f"Frames too large: more than the limit of {max_pixels} pixels; height x width:", shape[1], shape[2]],
        )
        with tf.control_dependencies([small]):
            embedding = embed_frame_boxes(embed_crops, frames, boxes, model.input_size, model.embedding_dim)
        return {OUTPUT: embedding}

    return from_bytes, from_pixels


def build_export_archive(
    model: HACNN, max_pixels: int = DEFAULT_MAX_PIXELS, max_boxes: int = MAX_BOXES
) -> keras.export.ExportArchive:
    """The exported object: a `keras.export.ExportArchive` with the `serving_default` (bytes), `embed_images`
    (pixels), `embed_boxes` (encoded frames and boxes) and `embed_boxes_pixels` (frame pixels and boxes) endpoints
    (rows of at most `max_boxes` boxes).
    They run the model with its weights as constants (`_frozen_inference`): the archive tracks no variables, and TF
    Serving's session loader has none to restore."""
    height, width = model.input_size
    archive = keras.export.ExportArchive()
    embed = _embedding_fn(model)
    archive.add_endpoint(
        SERVING_SIGNATURE,
        _bytes_fn(model, embed, max_pixels),
        input_signature=[tf.TensorSpec((None,), tf.string, BYTES_INPUT)],
    )
    archive.add_endpoint(
        IMAGES_SIGNATURE,
        lambda images: embed(images),
        input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32, IMAGES_INPUT)],
    )
    from_bytes, from_pixels = _boxes_fns(model, embed, max_pixels, max_boxes)
    boxes = tf.TensorSpec((None, None, 4), tf.float32, BOXES_INPUT)
    archive.add_endpoint(
        BOXES_SIGNATURE, from_bytes, input_signature=[tf.TensorSpec((None,), tf.string, FRAME_BYTES_INPUT), boxes]
    )
    archive.add_endpoint(
        BOXES_PIXELS_SIGNATURE,
        from_pixels,
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8, FRAMES_INPUT), boxes],
    )
    return archive


def mixed_precision_model(model: HACNN, precision: str) -> HACNN:
    """`model` re-created from its config under the Keras mixed-precision policy of `precision` (`"bf16"`:
    `mixed_bfloat16`, `"fp16"`: `mixed_float16`) with the same (float32) weights: convolutions and matrix products
    compute in half precision, inputs and the embedding stay float32.

    The layers the model declares as `float32_heads` (the batch norms that end the two branches) run in float32
    (`head_dtype="float32"`), so that the embedding's L2 normalisation does too.
    """
    if PRECISIONS.get(precision) is None:
        raise ValueError(f"precision must be one of {[p for p in PRECISIONS if PRECISIONS[p]]}; got {precision!r}")
    config = model.get_config()
    config["dtype"] = keras.DTypePolicy(PRECISIONS[precision])
    config["head_dtype"] = "float32"
    variant = type(model).from_config(config)
    variant.set_weights(model.get_weights())
    return variant


def export_saved_model(
    model: HACNN,
    export_dir: str | os.PathLike,
    model_name: str = "hacnn",
    version: int = 1,
    check: bool = True,
    warmup_images: list[bytes] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    precision: str = "fp32",
    max_boxes: int = MAX_BOXES,
) -> pathlib.Path:
    """Writes `<export_dir>/<model_name>/<version>/`, a SavedModel with the signatures

    - `serving_default`: `image_bytes` (string `[N]`, encoded JPEG/PNG/BMP/GIF, at most `max_pixels` pixels each by
      their header) -> `embedding` (`[N, D]` float32);
    - `embed_images`: `images` (float32 `[N, H, W, 3]` at the model's input size, RGB pixels in 0..255, finite) ->
      `embedding`;
    - `embed_boxes`: `frame_bytes` (string `[N]`, encoded camera frames of any sizes, at most `max_pixels` pixels
      each) and `boxes` (float32 `[N, B, 4]`, each frame's detector boxes, pixel `x1, y1, x2, y2`, padded with
      `0, 0, 0, 0`) -> `embedding` (`[N, B, D]`; zeros for an invalid or padding box), crops cut by
      `hacnn_tf.tracking.crop_boxes`;
    - `embed_boxes_pixels`: `frames` (uint8 `[N, FH, FW, 3]` RGB, at most `max_pixels` pixels) and `boxes` ->
      `embedding` (`[N, B, D]`),

    all in inference mode with a dynamic batch (0 included). The box signatures take rows of at most `max_boxes`
    boxes (`B`; a wider row is InvalidArgument naming the limit, before any frame is decoded; `exported_max_boxes`
    reads it back) and cut and embed them `hacnn_tf.tracking.CHUNK_SIZE` at a time, so that a request's memory
    does not grow with its boxes; TF Serving's batching merges rows, so the limit is per row, not per request. The
    version folder appears atomically (staged beside
    it in a locked `.<version>.partial-*` folder, then renamed) with the permissions of the umask; an existing version
    is never overwritten, and staging folders of killed exports are removed first. With `check`, the export is
    reloaded in a fresh process that does not import hacnn_tf, with `tf.saved_model.load` and with TF Serving's TF1
    session loader, and every signature must equal the Keras model (max abs diff <= 1e-5, batches of 1 and 3) and
    every warm-up record must run, else nothing is written and an error is raised. With `warmup_images`, TF Serving
    warm-up requests built from them go to `assets.extra/`.

    `precision`: `"fp32"` exports the model as it is; `"bf16"` (CPUs with AVX512-BF16 or AMX) and `"fp16"` (GPU
    serving) export `mixed_precision_model(model, precision)`, the same signatures with float32 inputs and outputs
    and half-precision convolutions. Their self-check compares with the float32 `model` by cosine instead: every
    embedding's cosine must be >= 0.999.

    Returns the version folder.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer (TF Serving's version folder); got {version!r}")
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer; got {max_pixels!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}")
    if isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1:
        raise ValueError(f"max_boxes must be a positive integer; got {max_boxes!r}")
    exported = model if PRECISIONS[precision] is None else mixed_precision_model(model, precision)
    min_cosine = None if PRECISIONS[precision] is None else HALF_PRECISION_MIN_COSINE
    target = pathlib.Path(export_dir) / model_name / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists: TF Serving versions are immutable, export a new version number")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_staging(target.parent)
    with staging_folder(target.parent, f".{version}{STAGING_PREFIX}", locked=True) as staging:
        saved_model = staging / "saved_model"
        build_export_archive(exported, max_pixels, max_boxes).write_out(str(saved_model), verbose=False)
        write_model_facts(saved_model, model)
        if warmup_images:
            from hacnn_tf.serving.warmup import write_warmup_requests

            write_warmup_requests(saved_model, warmup_images, model_name)
        if check:
            check_saved_model(saved_model, model, scratch_dir=staging, min_cosine=min_cosine, max_boxes=max_boxes)
        os.replace(saved_model, target)
    return target


def write_model_facts(saved_model_dir: pathlib.Path, model: HACNN) -> pathlib.Path:
    """Writes `assets.extra/hacnn_tf.json` (which TF Serving does not read): what converters of the SavedModel need
    from the model and cannot read from its frozen graph, `float_island_layers` (the names of the layers the model
    declares as `float_island_layers`, whose ops an int8 model keeps float) and `input_size`."""
    path = saved_model_dir / MODEL_FACTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = {
        "float_island_layers": sorted({layer.name for layer in model.float_island_layers}),
        "input_size": list(model.input_size),
    }
    path.write_text(json.dumps(facts, indent=1) + "\n")
    return path


def read_model_facts(saved_model_dir: str | os.PathLike) -> dict:
    """What `write_model_facts` wrote into an export; a `ValueError` naming the file when it is not there (an
    export of an earlier version: export the model again)."""
    path = pathlib.Path(saved_model_dir) / MODEL_FACTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot be read ({error}); the SavedModel does not say which layers an int8 "
            "model keeps float: export it again with hacnn-tf export"
        ) from None


def remove_orphaned_staging(model_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Removes the staging folders of exports into `model_dir` whose process is gone (killed mid-export); the
    folders of exports still running (their lock is held) are left alone. Returns what was removed."""
    return remove_stale_staging(model_dir, f".*{STAGING_PREFIX}*")


def check_saved_model(
    path: str | os.PathLike,
    model: HACNN,
    tolerance: float = SELF_CHECK_TOLERANCE,
    scratch_dir: str | os.PathLike | None = None,
    min_cosine: float | None = None,
    max_boxes: int = MAX_BOXES,
) -> float:
    """Runs the SavedModel at `path` in a fresh Python process that imports TensorFlow but not hacnn_tf, through
    `tf.saved_model.load` and through TF Serving's TF1 session loader (`hacnn_tf.serving.tf_serving_loader`), on
    batches of 1 and 3 random images: `embed_images` on their pixels and `serving_default` on them PNG-encoded;
    `embed_boxes` on two PNG frames of different sizes and `embed_boxes_pixels` on two frames, with boxes inside,
    at and past the borders, of 1 px and of padding (compared with `hacnn_tf.tracking.ReIDEmbedder` on `model`); and
    replays the warm-up records. Every output must equal `model`'s to `tolerance`, or, with `min_cosine` (a
    half-precision export), be finite with each embedding's cosine with `model`'s at least `min_cosine`. Returns the
    max abs diff or raises `RuntimeError`. The scratch files go to a temporary folder in `scratch_dir` (default: the
    system's), which is also the child's `TMPDIR`; the child dies with this process (`run_child`). `max_boxes`: the
    export's limit, which the boxes per row of the box cases stay within."""
    path = pathlib.Path(path)
    inputs, expected = _self_check_cases(model, max_boxes)
    results = _run_in_fresh_process(path, inputs, scratch_dir)
    return _compare_self_check(path, expected, results, tolerance, min_cosine)


def _self_check_cases(model: HACNN, max_boxes: int) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """The self-check's inputs, `{"<signature>:<input>:<case>": array}` as `tf_serving_loader` reads them, and what
    `model` gives on them, `{(signature, case): embeddings}` (see `check_saved_model`)."""
    height, width = model.input_size
    rng = np.random.default_rng(0)
    pixels = {
        f"batch{n}": rng.integers(0, 256, size=(n, height, width, 3)).astype("float32") for n in SELF_CHECK_BATCHES
    }
    encoded = {
        case: np.array([tf.io.encode_png(image.astype("uint8")).numpy() for image in images])
        for case, images in pixels.items()
    }
    inputs = {f"{IMAGES_SIGNATURE}:{IMAGES_INPUT}:{case}": images for case, images in pixels.items()}
    inputs.update({f"{SERVING_SIGNATURE}:{BYTES_INPUT}:{case}": data for case, data in encoded.items()})
    expected = {}
    for case, images in pixels.items():
        expected[IMAGES_SIGNATURE, case] = _keras_embedding(model, images)
        decoded = HACNNPreprocessor(model.input_size)(encoded[case])
        expected[SERVING_SIGNATURE, case] = _keras_embedding(model, decoded)
    frames = [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for size in SELF_CHECK_FRAME_SIZES]
    boxes = np.array([SELF_CHECK_BOXES, SELF_CHECK_BOXES[::-1]], np.float32)[:, :max_boxes]
    same_size = np.stack([frame[: SELF_CHECK_FRAME_SIZES[1][0], : SELF_CHECK_FRAME_SIZES[0][1]] for frame in frames])
    inputs.update(
        {
            f"{BOXES_SIGNATURE}:{FRAME_BYTES_INPUT}:frames2": np.array([tf.io.encode_png(f).numpy() for f in frames]),
            f"{BOXES_SIGNATURE}:{BOXES_INPUT}:frames2": boxes,
            f"{BOXES_PIXELS_SIGNATURE}:{FRAMES_INPUT}:frames2": same_size,
            f"{BOXES_PIXELS_SIGNATURE}:{BOXES_INPUT}:frames2": boxes,
        }
    )
    embedder = ReIDEmbedder(model)
    for signature, case_frames in ((BOXES_SIGNATURE, frames), (BOXES_PIXELS_SIGNATURE, list(same_size))):
        expected[signature, "frames2"] = embedder(case_frames, list(boxes)).reshape(*boxes.shape[:2], -1)
    return inputs, expected


def _run_in_fresh_process(
    path: pathlib.Path, inputs: dict[str, np.ndarray], scratch_dir: str | os.PathLike | None
) -> dict[str, np.ndarray]:
    """`tf_serving_loader`'s outputs on `inputs`, run on the SavedModel at `path` in a child process (both loaders,
    and the warm-up records), `{"<loader>:<signature>:<case>:<output>" or "warmup:...": array}`."""
    with tempfile.TemporaryDirectory(prefix=".self-check-", dir=scratch_dir) as scratch:
        inputs_path, outputs_path = pathlib.Path(scratch) / "in.npz", pathlib.Path(scratch) / "out.npz"
        np.savez(inputs_path, **inputs)
        result = run_child(
            [sys.executable, "-P", tf_serving_loader.__file__, str(path), str(inputs_path), str(outputs_path)], scratch
        )
        if native_logs_shown():
            sys.stderr.write(result.stderr)
        if result.returncode:
            raise RuntimeError(
                f"SavedModel self-check: running {path} in a fresh process (tf.saved_model.load and "
                f"TF Serving's session loader) failed:\n{without_native_noise(result.stderr)[-3000:]}"
            )
        with np.load(outputs_path) as outputs:
            return {key: outputs[key] for key in outputs.files}


def _compare_self_check(
    path: pathlib.Path,
    expected: dict[tuple[str, str], np.ndarray],
    results: dict[str, np.ndarray],
    tolerance: float,
    min_cosine: float | None,
) -> float:
    """The max abs diff of `results` (both loaders) from `expected`, or `RuntimeError` where an output is missing,
    a box without a crop is not zeros, a warm-up record is not finite, or the difference (the cosine, with
    `min_cosine`) is past its bound."""
    worst, worst_cosine = 0.0, 1.0
    for loader in ("tf2", "session"):
        for (signature, case), want in expected.items():
            key = f"{loader}:{signature}:{case}:{OUTPUT}"
            if key not in results:
                raise RuntimeError(f"SavedModel self-check: {path} gave no {OUTPUT!r} for {signature} ({loader})")
            got, want = results[key].reshape(-1, want.shape[-1]), want.reshape(-1, want.shape[-1])
            # np.maximum/np.minimum keep a NaN (Python's max and min drop it when it comes second).
            worst = float(np.maximum(worst, np.abs(got - want).max(initial=0.0)))
            # An invalid box's row is zeros, which have no cosine: it must come back zeros.
            embedded = np.any(want != 0, axis=1)
            if np.any(got[~embedded] != 0):
                raise RuntimeError(
                    f"SavedModel self-check: {path} gave a non-zero {signature} embedding ({loader}) "
                    "for a box without a crop"
                )
            cosines = row_cosines(got[embedded], want[embedded])
            worst_cosine = float(np.minimum(worst_cosine, cosines.min(initial=1.0)))
    warmups = [key for key in results if key.startswith("warmup:")]
    if any(not np.isfinite(results[key]).all() for key in warmups):
        raise RuntimeError(f"SavedModel self-check: a warm-up record of {path} gave non-finite embeddings")
    if min_cosine is not None:
        if not worst_cosine >= min_cosine:
            raise RuntimeError(
                f"SavedModel self-check: the reloaded export differs from the Keras model: an "
                f"embedding's cosine with the Keras model's is {worst_cosine:.6f} (< {min_cosine})"
            )
    elif not worst <= tolerance:
        raise RuntimeError(
            f"SavedModel self-check: the reloaded export differs from the Keras model by {worst:.2e} "
            f"(> {tolerance:.0e})"
        )
    return worst


def exported_max_boxes(path: str | os.PathLike) -> int:
    """The `max_boxes` that the SavedModel folder `path` (an `export_saved_model` version folder) was exported with:
    the most boxes per row its box signatures take, read from its `saved_model.pb` without loading it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    limits = {
        int(tf.make_ndarray(node.attr["value"].tensor))
        for meta_graph in saved_model.meta_graphs
        for function in meta_graph.graph_def.library.function
        for node in function.node_def
        if node.name == MAX_BOXES_NODE and node.op == "Const"
    }
    if len(limits) != 1:
        raise ValueError(
            f"{path}: no single max_boxes in its box signatures (found {sorted(limits)}): not an "
            "export_saved_model export with box signatures"
        )
    return limits.pop()


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(N,)` cosines of the rows of two `(N, D)` arrays (NaN where a row holds NaN)."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _keras_embedding(model: HACNN, pixels) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(model_inputs(model, pixels), training=False)["embedding"])
