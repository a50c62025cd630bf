"""`.keras` files saved as `hacnn_tf>HACNN` before the backbone/task split (version 0.1.0, and 0.2 in four
configurations: tests/fixtures) load and give the outputs they gave when saved."""

import pathlib

import keras
import numpy as np
import pytest

from hacnn_tf.convert.torchreid import torchreid_variable_map

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"
OUTPUTS = ("embedding", "global_features", "local_features", "global_logits", "local_logits")


def load(name: str, compile: bool = False):
    model = keras.saving.load_model(FIXTURES / f"{name}.keras", compile=compile)
    return model, np.load(FIXTURES / f"{name}_outputs.npz")


def translations(model, inputs) -> list[np.ndarray]:
    return [np.asarray(t) for t in model.attention(inputs)["translations"]]


def test_keras_file_of_version_0_1_0_still_loads():
    model, saved = load("hacnn_tiny_0.1.0")
    np.testing.assert_allclose(np.asarray(model(saved["inputs"])["embedding"]), saved["embedding"], atol=1e-6)


@pytest.mark.parametrize("name", ["hacnn_tiny_0.2", "hacnn_small_pixels_0.2", "hacnn_small_global_0.2"])
def test_keras_files_of_version_0_2_give_their_outputs(name):
    model, saved = load(name)
    outputs = model(saved["inputs"])
    assert sorted(outputs) == sorted(k for k in OUTPUTS if k in saved.files)
    for key, value in outputs.items():
        np.testing.assert_allclose(np.asarray(value), saved[key], atol=1e-5, err_msg=key)
    for level, value in enumerate(translations(model, saved["inputs"]), start=1):
        np.testing.assert_allclose(value, saved[f"translations{level}"], atol=1e-6)


def test_trainer_backup_of_version_0_2_resumes_with_its_optimizer_state():
    """A compiled file (a trainer backup) keeps its weights and, for every weight, its own Adam slots."""
    model, saved = load("hacnn_small_compiled_0.2", compile=True)
    for key, value in model(saved["inputs"]).items():
        np.testing.assert_allclose(np.asarray(value), saved[key], atol=1e-5, err_msg=key)
    optimizer = model.optimizer
    assert int(optimizer.iterations) == int(saved["iterations"]) == 1
    checked = 0
    for key, variable, _ in torchreid_variable_map(model):
        if variable.trainable:
            index = optimizer._get_variable_index(variable)
            np.testing.assert_array_equal(np.asarray(optimizer._momentums[index]), saved[f"momentum:{key}"], key)
            np.testing.assert_array_equal(np.asarray(optimizer._velocities[index]), saved[f"velocity:{key}"], key)
            checked += 1
    assert checked * 2 == sum(name.startswith(("momentum:", "velocity:")) for name in saved.files)


def test_a_0_2_file_loads_into_a_fresh_model_with_load_weights():
    """`model.load_weights` (what resuming from a backup runs) reads the old layout too, optimizer slots included."""
    from hacnn_tf.model import HACNN

    reference, saved = load("hacnn_small_compiled_0.2", compile=True)
    model = HACNN.from_config(reference.get_config())
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    model.load_weights(FIXTURES / "hacnn_small_compiled_0.2.keras")
    for key, value in model(saved["inputs"]).items():
        np.testing.assert_allclose(np.asarray(value), saved[key], atol=1e-5, err_msg=key)
    for key, variable, _ in torchreid_variable_map(model):
        if variable.trainable:
            index = model.optimizer._get_variable_index(variable)
            np.testing.assert_array_equal(np.asarray(model.optimizer._velocities[index]), saved[f"velocity:{key}"], key)
