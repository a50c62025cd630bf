import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL

from hacnn_tf import HACNN, normalize_images
from hacnn_tf.model import l2_normalize, local_sizes


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_parameter_counts_equal_torchreid():
    # torchreid HACNN(751): 3,699,638 trainable parameters; 2,929,112 without the two classifiers (torchreid 0.2.5).
    assert count(HACNN(751).trainable_weights) == 3_699_638
    assert count(HACNN(None).trainable_weights) == 2_929_112
    assert count(HACNN(702).trainable_weights) == 3_649_364
    assert count(HACNN(751, learn_region=False).trainable_weights) == 1_614_872 + 513 * 751


def test_parameter_count_matches_torchreid_module(torchreid_model_factory):
    reference = torchreid_model_factory(num_classes=100)
    assert count(HACNN(100).trainable_weights) == sum(p.numel() for p in reference.parameters())


def test_one_output_structure_in_training_and_inference(paper_model, images):
    shapes = {
        "embedding": (4, 1024),
        "global_logits": (4, 10),
        "local_logits": (4, 10),
        "global_features": (4, 512),
        "local_features": (4, 512),
    }
    inference = paper_model(images)
    assert {k: tuple(v.shape) for k, v in inference.items()} == shapes
    assert all(v.dtype == "float32" for v in inference.values())
    norms = np.linalg.norm(np.asarray(inference["embedding"]).reshape(4, 2, 512), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)  # each branch L2-normalised
    training = paper_model(images, training=True)
    assert {k: tuple(v.shape) for k, v in training.items()} == shapes
    assert float(np.min(training["global_features"])) >= 0.0  # post-ReLU raw features for metric losses
    # The embedding is the normalised features of the same call.
    features = np.concatenate([np.asarray(inference[k]) for k in ("global_features", "local_features")], axis=-1)
    features = features.reshape(4, 2, 512)
    np.testing.assert_allclose(
        np.asarray(inference["embedding"]).reshape(4, 2, 512),
        features / np.linalg.norm(features, axis=-1, keepdims=True),
        atol=1e-5,
    )


def test_model_evaluate_runs_the_training_losses(tiny_synthetic):
    """Inference returns what the losses are keyed by, so `evaluate` and `fit` take the same compiled losses."""
    from hacnn_tf.losses import hacnn_losses

    model = HACNN(4, **TINY_MODEL)
    losses, weights = hacnn_losses(
        softmax=True, triplet=True, weight_x=1.0, weight_t=1.0, label_smoothing=0.0, margin=0.3, learn_region=True
    )
    model.compile(optimizer="adam", loss=losses, loss_weights=weights)
    images = np.random.default_rng(1).normal(size=(8, 64, 32, 3)).astype("float32")
    labels = {name: np.repeat(np.arange(4), 2) for name in losses}
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    # Untrained (zero-bias classifiers on near-uniform logits): the cross-entropy of each head is close to log(4).
    assert abs(result["global_logits_loss"] - np.log(4)) < 0.2 and abs(result["local_logits_loss"] - np.log(4)) < 0.2
    outputs = model(images)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        labels["global_logits"], outputs["global_logits"]
    )
    np.testing.assert_allclose(result["global_logits_loss"], float(expected), rtol=1e-5)


def test_embedding_of_zero_features_is_zero_not_nan():
    np.testing.assert_array_equal(np.asarray(l2_normalize(np.zeros((2, 8), "float32"))), 0.0)


def test_global_only_model_returns_raw_global_feature():
    model = HACNN(5, learn_region=False)
    assert model.embedding_dim == 512
    outputs = model(np.zeros((2, 160, 64, 3), "float32"), training=True)
    assert set(outputs) == {"embedding", "global_logits", "global_features"}
    np.testing.assert_array_equal(np.asarray(outputs["embedding"]), np.asarray(outputs["global_features"]))


@pytest.mark.parametrize("input_size", [(256, 128), (128, 64)])
def test_other_input_sizes(input_size):
    model = HACNN(3, input_size=input_size)
    assert model(np.random.rand(2, *input_size, 3).astype("float32"))["embedding"].shape == (2, 1024)


def test_local_sizes_follow_the_paper_and_the_inception_b_halving():
    assert local_sizes((160, 64)) == [(24, 28), (12, 14), (6, 7)]
    assert local_sizes((256, 128)) == [(38, 56), (19, 28), (10, 14)]


def test_bad_configuration_and_input_errors():
    with pytest.raises(ValueError, match=r"multiples of 32; got \[150, 64\]"):
        HACNN(3, input_size=(150, 64))
    with pytest.raises(ValueError, match="nchannels"):
        HACNN(3, nchannels=(128, 256))
    with pytest.raises(ValueError, match="num_classes"):
        HACNN(0)
    with pytest.raises(ValueError, match=r"configured for input \(N, 160, 64, 3\); got input shape \(1, 128, 64, 3\)"):
        HACNN(3)(np.zeros((1, 128, 64, 3), "float32"))


def test_include_preprocessing_takes_uint8_pixels(paper_model):
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 160, 64, 3), dtype=np.uint8)
    raw = HACNN(10, include_preprocessing=True)
    raw.set_weights(paper_model.get_weights())
    np.testing.assert_allclose(
        np.asarray(raw(pixels)["embedding"]), np.asarray(paper_model(normalize_images(pixels))["embedding"]), atol=1e-6
    )
    mean = np.array([0.485, 0.456, 0.406]) * 255
    np.testing.assert_allclose(np.asarray(normalize_images(np.broadcast_to(mean, (1, 1, 1, 3)))), 0.0, atol=1e-6)


@pytest.mark.slow
def test_keras_file_round_trip_in_a_fresh_process(tmp_path, paper_model, images):
    path = tmp_path / "model.keras"
    paper_model.save(path)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(f"""
        import keras, numpy as np
        import hacnn_tf  # registers the hacnn_tf> classes
        model = keras.saving.load_model({str(path)!r})
        assert type(model).__name__ == "HACNN", type(model)
        embedding = model(np.load({str(tmp_path / "images.npy")!r}))["embedding"]
        np.save({str(tmp_path / "out.npy")!r}, np.asarray(embedding))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.asarray(paper_model(images)["embedding"]))


@pytest.mark.slow
def test_runs_under_xla(paper_model, images):
    compiled = tf.function(lambda x: paper_model(x, training=False)["embedding"], jit_compile=True)
    np.testing.assert_allclose(np.asarray(compiled(images)), np.asarray(paper_model(images)["embedding"]), atol=2e-5)
    train_compiled = tf.function(lambda x: paper_model(x, training=True)["local_logits"], jit_compile=True)
    assert train_compiled(images).shape == (4, 10)


def test_mixed_float16_returns_float32_embeddings(paper_model, images):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = HACNN(10)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(paper_model.get_weights())
    embedding = model(images)["embedding"]
    assert embedding.dtype == "float32"
    assert model.stem.conv.compute_dtype == "float16"
    reference = np.asarray(paper_model(images)["embedding"])
    cosine = np.sum(np.asarray(embedding) * reference, axis=-1) / 2.0  # two unit-norm halves
    assert np.all(cosine > 0.999), cosine
    assert all(v.dtype == "float32" for v in model(images, training=True).values())


def test_the_model_declares_its_float32_heads_and_float_islands():
    """Export and quantisation read these lists, not layer names: mixed precision keeps `float32_heads` in
    float32, an int8 model keeps the ops of `float_island_layers` float."""
    from hacnn_tf.layers.region_sampler import RegionSampler
    from hacnn_tf.layers.regional import HardRegionalAttention

    model = HACNN(None, **TINY_MODEL)
    assert model.float32_heads == [model.global_bn, model.local_bn]
    islands = model.float_island_layers
    assert [type(layer) for layer in islands] == [HardRegionalAttention] * 3 + [RegionSampler] * 3
    every_layer = {id(layer) for layer in model._flatten_layers(include_self=False, recursive=True)}
    assert all(id(layer) in every_layer for layer in islands)
    global_only = HACNN(None, **{**TINY_MODEL, "learn_region": False})
    assert global_only.float32_heads == [global_only.global_bn] and global_only.float_island_layers == []


def test_an_export_records_the_float_islands_its_converters_read(tmp_path):
    from hacnn_tf.export.saved_model import export_saved_model, mixed_precision_model, read_model_facts

    model = HACNN(None, **TINY_MODEL)
    version = export_saved_model(model, tmp_path, check=False)
    facts = read_model_facts(version)
    assert facts == {
        "float_island_layers": sorted({layer.name for layer in model.float_island_layers}),
        "input_size": list(model.input_size),
    }
    assert facts["float_island_layers"] == ["hard_attention", "region_sampler1", "region_sampler2", "region_sampler3"]
    half = mixed_precision_model(model, "fp16")
    assert [head.compute_dtype for head in half.float32_heads] == ["float32", "float32"]
    assert half.stem.conv.compute_dtype == "float16"
    with pytest.raises(ValueError, match="assets.extra/hacnn_tf.json: cannot be read .* export it again"):
        read_model_facts(tmp_path)
