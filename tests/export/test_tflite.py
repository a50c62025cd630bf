import numpy as np
import pytest
from conftest import TINY_MODEL

from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.export import convert_tflite, export_saved_model
from hacnn_tf.export.parity import parity_report
from hacnn_tf.export.saved_model import read_model_facts
from hacnn_tf.export.tflite import (
    QUANTIZATIONS,
    convert_tflite_variants,
    tflite_op_counts,
)
from hacnn_tf.runtime.tflite import TFLiteEmbedder

BUILTIN_ONLY = {
    "CONV_2D",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "ADD",
    "MUL",
    "SUB",
    "ABS",
    "PAD",
    "MIRROR_PAD",
    "MAX_POOL_2D",
    "DEPTHWISE_CONV_2D",
    "CONCATENATION",
    "MEAN",
    "SUM",
    "RESHAPE",
    "STRIDED_SLICE",
    "TANH",
    "LOGISTIC",
    "L2_NORMALIZATION",
    "QUANTIZE",
    "DEQUANTIZE",
}


@pytest.fixture(scope="module")
def trained_tiny(tiny_synthetic, tmp_path_factory):
    """A tiny HA-CNN trained a few epochs, so that quantisation is judged on a model whose ranking means something."""
    from hacnn_tf.trainer import fit, load_config

    overrides = [
        f"output.dir={tmp_path_factory.mktemp('fit')}",
        "train.epochs=4",
        "train.batch_size=8",
        "eval.every=0",
        "output.tensorboard=false",
        "optimizer.learning_rate=0.002",
        *(f"model.{k}={v}" for k, v in TINY_MODEL.items()),
    ]
    model, _ = fit(load_config(None, overrides), tiny_synthetic, verbose=0)
    return model


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """A held-out split of 40 identities (120 queries), unseen in training: enough queries that one rank flip
    moves the mAP by well under the 1-point target."""
    from hacnn_tf.data import load_dataset
    from hacnn_tf.data.synthetic import generate

    root = generate(
        tmp_path_factory.mktemp("held_out") / "set",
        num_train_ids=1,
        num_test_ids=40,
        num_cameras=3,
        images_per_id_per_camera=2,
        num_distractors=10,
        num_junk=0,
        seed=11,
    )
    return load_dataset("market1501", root)


@pytest.fixture(scope="module")
def converted(trained_tiny, tiny_synthetic, held_out, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    saved_model = export_saved_model(trained_tiny, out / "sm")
    calibration = load_pixels(tiny_synthetic.train, trained_tiny.input_size)
    paths = convert_tflite_variants(saved_model, {q: out / f"hacnn_{q}.tflite" for q in QUANTIZATIONS}, calibration)
    report = parity_report(
        trained_tiny, paths, held_out.query, held_out.gallery, out / "parity", saved_model_dir=saved_model
    )
    return paths, report, out


def test_every_variant_loads_and_uses_builtin_ops_only(converted):
    paths, _, out = converted
    for variant, path in paths.items():
        embedder = TFLiteEmbedder(path)  # allocate_tensors: the file loads, not only converts
        assert list(embedder.input["shape"]) == list(embedder.input["shape_signature"]) == [1, 64, 32, 3]
        assert embedder.input["dtype"] == (np.uint8 if variant == "uint8" else np.float32)
        assert embedder.output["dtype"] == np.float32
        ops = tflite_op_counts(path)
        assert set(ops) <= BUILTIN_ONLY, (variant, set(ops) - BUILTIN_ONLY)
        # The whole network (73 convs less the 3 rank-one soft-attention convs, now matmuls), the sampler as matmuls.
        assert ops["CONV_2D"] == 70 and ops["BATCH_MATMUL"] == 6
        assert not any(name.startswith("Flex") or name == "CUSTOM" for name in ops)
        # XNNPACK takes the graph in few pieces: no MIRROR_PAD (it does not run it), no int8 BATCH_MATMUL with two
        # dynamic operands and no int8 AVERAGE_POOL_2D (neither); left to TFLite are the final L2 normalisations and,
        # in the int8 files, the soft attention's int8 product of its spatial and channel maps.
        # No TRANSPOSE either (the region sampler's matrices are built without an einsum).
        assert "MIRROR_PAD" not in ops and "TRANSPOSE" not in ops
        partitions = [d["op_name"] for d in embedder.interpreter._get_ops_details()].count("DELEGATE")
        assert partitions <= {"int8": 5, "uint8": 5, "fp32": 2}.get(variant, 3), (variant, partitions)
    # The float islands stay float in the integer files: no int8 tensor in the hard attention or the samplers.
    islands = read_model_facts(out / "sm" / "hacnn" / "1")["float_island_layers"]
    assert islands
    for variant in ("int8", "uint8"):
        details = TFLiteEmbedder(paths[variant]).interpreter.get_tensor_details()
        quantised = [d["name"] for d in details if d["dtype"] == np.int8 and any(name in d["name"] for name in islands)]
        assert not quantised, (variant, quantised)
    sizes = {variant: path.stat().st_size for variant, path in paths.items()}
    assert sizes["fp16"] < sizes["fp32"] and sizes["int8"] < sizes["dynamic"] * 1.1 < sizes["fp32"]


def test_parity_targets(converted):
    _, report, out = converted
    assert (out / "parity.csv").is_file() and (out / "parity.md").is_file()
    assert report.loc["saved_model", "max_abs_diff"] <= 1e-5
    assert report.loc["fp32", "max_abs_diff"] <= 1e-4
    assert report.loc["fp16", "mean_cosine"] >= 0.9999
    keras_map = report.loc["keras", "mAP"]
    for variant in ("dynamic", "int8", "uint8"):
        assert report.loc[variant, "mean_cosine"] >= 0.99, report.to_string()
        assert abs(report.loc[variant, "mAP"] - keras_map) <= 0.01, report.to_string()
    assert (report.loc[list(QUANTIZATIONS), "latency_ms"] > 0).all()


def test_single_variant_conversion_and_argument_checks(converted, tmp_path):
    paths, _, out = converted
    single = convert_tflite(out / "sm" / "hacnn" / "1", tmp_path / "fp32.tflite", "fp32")
    assert single.read_bytes() == paths["fp32"].read_bytes()
    with pytest.raises(ValueError, match="quantization must be one of"):
        convert_tflite(out / "sm" / "hacnn" / "1", tmp_path / "x.tflite", "int4")
    with pytest.raises(ValueError, match="needs representative_images"):
        convert_tflite(out / "sm" / "hacnn" / "1", tmp_path / "x.tflite", "int8")
