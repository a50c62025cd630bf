import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MODEL
from PIL import Image

from hacnn_tf import HACNN
from hacnn_tf.evaluation.features import extract_features


@pytest.mark.slow
def test_models_that_normalise_their_input_get_raw_pixels(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (70, 30, 3), np.uint8)).save(paths[-1])
    table = pd.DataFrame({"path": paths})
    model = HACNN(None, **TINY_MODEL)
    raw = HACNN(None, include_preprocessing=True, **TINY_MODEL)
    raw.set_weights(model.get_weights())
    np.testing.assert_allclose(extract_features(raw, table), extract_features(model, table), atol=1e-5)
