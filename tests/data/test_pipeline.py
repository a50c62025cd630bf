import io

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.pipeline import (
    epoch_plan,
    make_eval_dataset,
    make_train_dataset,
    random_erase,
    random_translate,
)


def encode(array: np.ndarray, mode: str, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_decode_grayscale_and_rgba_to_rgb_without_resampling_at_the_same_size():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(16, 8), dtype=np.uint8)
    decoded = HACNNPreprocessor((16, 8)).decode_and_resize(encode(gray, "L")).numpy()
    np.testing.assert_allclose(decoded, np.repeat(gray[:, :, None], 3, axis=2).astype("float32"), atol=1e-4)
    rgba = rng.integers(0, 256, size=(16, 8, 4), dtype=np.uint8)
    decoded = HACNNPreprocessor((16, 8)).decode_and_resize(encode(rgba, "RGBA")).numpy()
    np.testing.assert_allclose(decoded, rgba[:, :, :3].astype("float32"), atol=1e-4)


def test_resize_is_bilinear_like_pil():
    rng = np.random.default_rng(1)
    image = (rng.random((40, 20, 3)) * 255).astype(np.uint8)
    ours = HACNNPreprocessor((160, 64)).decode_and_resize(encode(image, "RGB")).numpy()
    pil = np.asarray(Image.fromarray(image).resize((64, 160), Image.BILINEAR), dtype="float32")
    assert ours.shape == (160, 64, 3)
    assert np.abs(ours - pil).mean() < 2.0  # the same interpolation up to PIL's rounding to uint8 and edge handling


def test_random_translate_probability_one_and_zero():
    image = tf.reshape(tf.range(16 * 8 * 3, dtype=tf.float32), (16, 8, 3))
    seed = tf.constant([1, 2], tf.int64)
    np.testing.assert_array_equal(random_translate(image, (16, 8), seed, probability=0.0).numpy(), image.numpy())
    shifted = random_translate(image, (16, 8), seed, probability=1.0)
    assert shifted.shape == (16, 8, 3)
    # A constant image stays constant through the enlarge-and-crop.
    flat = random_translate(tf.fill((16, 8, 3), 7.0), (16, 8), seed, probability=1.0).numpy()
    np.testing.assert_allclose(flat, 7.0, atol=1e-4)


def test_random_erase_zeroes_one_box_of_bounded_area():
    image = tf.ones((160, 64, 3))
    erased = random_erase(image, tf.constant([3, 4], tf.int64), probability=1.0).numpy()
    zero_rows, zero_cols = np.nonzero(erased[:, :, 0] == 0)
    area = (zero_rows.max() - zero_rows.min() + 1) * (zero_cols.max() - zero_cols.min() + 1)
    assert area == len(zero_rows)  # one rectangle
    assert 0.01 * 160 * 64 <= area <= 0.45 * 160 * 64
    np.testing.assert_array_equal(random_erase(image, tf.constant([3, 4], tf.int64), probability=0.0), image)


def test_epoch_plan_is_per_epoch_deterministic():
    pids = np.repeat(np.arange(10), 5)
    plan = epoch_plan(pids, epochs=3, batch_size=8, seed=4)
    assert plan.shape == (3, 48)
    np.testing.assert_array_equal(epoch_plan(pids, epochs=5, batch_size=8, seed=4)[:3], plan)  # epoch e: (seed, e)
    assert not np.array_equal(plan[0], plan[1])
    assert all(len(set(row)) == 48 for row in plan)  # uniform shuffling: no image twice in an epoch


def test_pk_batches_hold_p_identities_with_k_images_each():
    pids = np.concatenate([np.repeat(np.arange(12), 6), [12, 13]])  # two identities with a single image
    plan = epoch_plan(pids, epochs=2, batch_size=16, num_instances=4, seed=0)
    for batch in plan.reshape(-1, 16):
        identities, counts = np.unique(pids[batch], return_counts=True)
        assert len(identities) == 4 and set(counts) == {4}
    with pytest.raises(ValueError, match="multiple of num_instances"):
        make_train_dataset(pd.DataFrame({"path": ["a"], "pid": [0]}), (16, 8), 10, ["y"], num_instances=4)


def test_train_dataset_is_seeded_and_resumes_at_an_epoch(tiny_synthetic):
    table = tiny_synthetic.train
    make = lambda seed, initial=0: make_train_dataset(
        table, (64, 32), 8, ["global_logits", "local_logits"], seed=seed, epochs=3, initial_epoch=initial
    )
    first = list(make(0))
    steps = len(table) // 8
    assert len(first) == 3 * steps
    images, labels = first[0]
    assert images.shape == (8, 64, 32, 3) and set(labels) == {"global_logits", "local_logits"}
    np.testing.assert_array_equal(labels["global_logits"], labels["local_logits"])
    again = list(make(0))
    np.testing.assert_array_equal(first[5][0], again[5][0])
    resumed = list(make(0, initial=1))
    assert len(resumed) == 2 * steps
    np.testing.assert_array_equal(resumed[0][0], first[steps][0])  # same images, same augmentation
    assert not np.array_equal(list(make(1))[0][0], first[0][0])


def test_eval_dataset_keeps_order_and_normalises(tiny_synthetic):
    table = tiny_synthetic.query
    batches = list(make_eval_dataset(table, (64, 32), batch_size=5))
    assert sum(len(b) for b in batches) == len(table)
    preprocessor = HACNNPreprocessor((64, 32))
    expected = preprocessor.normalize(preprocessor.decode_and_resize(tf.io.read_file(table["path"].iloc[6])))
    np.testing.assert_allclose(batches[1][1], expected, atol=1e-6)
