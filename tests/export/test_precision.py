"""bf16 and fp16 SavedModels: mixed-precision graphs (half-precision convolutions, float32 inputs and outputs, the
same signatures), self-checked by cosine under both loaders, close to the float32 Keras model."""

import collections

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL

from hacnn_tf import HACNN
from hacnn_tf.export import export_saved_model
from hacnn_tf.export.all import parity
from hacnn_tf.export.saved_model import HALF_PRECISION_MIN_COSINE, check_saved_model, mixed_precision_model
from hacnn_tf.runtime.keras_model import KerasEmbedder

HALF = {"bf16": tf.bfloat16, "fp16": tf.float16}


def op_dtypes(signature) -> collections.Counter:
    """`{(op type, T): count}` of the compute ops in a signature's graph and the functions it calls."""
    graph = signature.graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    return collections.Counter(
        (node.op, tf.dtypes.as_dtype(node.attr["T"].type).name)
        for node in nodes
        if node.op in ("Conv2D", "MatMul", "BatchMatMulV2")
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_graph_computes_in_half_precision_with_float32_signatures(exported_formats, export_model, precision):
    loaded = tf.saved_model.load(str(exported_formats[f"saved_model-{precision}"] / "hacnn" / "1"))
    assert set(loaded.signatures) == {"serving_default", "embed_images", "embed_boxes", "embed_boxes_pixels"}
    embed = loaded.signatures["embed_images"]
    assert embed.structured_input_signature[1] == {"images": tf.TensorSpec((None, 64, 32, 3), tf.float32, "images")}
    assert embed.structured_outputs["embedding"].dtype == tf.float32
    dtypes = op_dtypes(embed)
    half = HALF[precision].name
    # Every convolution (70) and batch matmul of the sampler in half precision; only the two head matmuls float32.
    assert dtypes[("Conv2D", half)] == 70 and ("Conv2D", "float32") not in dtypes, dtypes
    assert dtypes[("BatchMatMulV2", half)] == 6 and ("BatchMatMulV2", "float32") not in dtypes, dtypes
    pixels = np.random.default_rng(9).uniform(0, 255, size=(8, 64, 32, 3)).astype("float32")
    output = embed(images=pixels)["embedding"].numpy()
    result = parity(output, KerasEmbedder(export_model)(pixels))
    assert result["mean_cosine"] >= 0.999 and result["min_cosine"] >= HALF_PRECISION_MIN_COSINE, result
    # The embedding is normalised in float32: each branch has unit norm to float32 precision.
    np.testing.assert_allclose(np.linalg.norm(output.reshape(8, 2, 32), axis=-1), 1.0, atol=1e-5)


def test_float16_embedding_of_a_zero_branch_is_zero_not_nan():
    """In float16 the normalisation's epsilon (1e-12) is 0: a branch whose features are all 0 after the ReLU gave
    0 * rsqrt(0) = NaN; the float32 heads of `mixed_precision_model` keep it 0, as in float32."""
    model = HACNN(None, **TINY_MODEL)
    for variable in (model.global_fc.kernel, model.global_fc.bias, model.global_bn.beta):
        variable.assign(tf.zeros_like(variable))
    images = np.random.default_rng(10).normal(size=(2, 64, 32, 3)).astype("float32")
    plain = HACNN.from_config({**model.get_config(), "dtype": "mixed_float16"})
    plain.set_weights(model.get_weights())
    assert np.isnan(plain(images, training=False)["embedding"].numpy()[:, :32]).all()
    variant = mixed_precision_model(model, "fp16")
    assert variant.global_bn.compute_dtype == "float32" and variant.stem.compute_dtype == "float16"
    embedding = variant(images, training=False)["embedding"].numpy()
    np.testing.assert_array_equal(embedding[:, :32], 0.0)
    np.testing.assert_allclose(np.linalg.norm(embedding[:, 32:], axis=-1), 1.0, atol=1e-5)


def test_self_check_compares_half_precision_by_cosine(exported_formats, export_model):
    path = exported_formats["saved_model-bf16"] / "hacnn" / "1"
    with pytest.raises(RuntimeError, match=r"cosine with the Keras model's is .* \(< 0.999\)"):
        check_saved_model(path, HACNN(None, **TINY_MODEL), min_cosine=HALF_PRECISION_MIN_COSINE)


def test_unknown_precision_is_refused(export_model, tmp_path):
    with pytest.raises(ValueError, match="precision must be one of"):
        export_saved_model(export_model, tmp_path, precision="int8")
    with pytest.raises(ValueError, match="precision must be one of"):
        mixed_precision_model(export_model, "fp32")
