"""Load test: the SavedModel signature and the LiteRT embedder called from 8 threads give the single-thread results,
with resident memory flat over thousands of calls."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL

from hacnn_tf import HACNN
from hacnn_tf.export import convert_tflite, export_saved_model
from hacnn_tf.runtime.tflite import TFLiteEmbedder

THREADS = 8
CALLS = 2000  # per runtime, over all threads
RSS_FROM_CALL = 500  # memory is compared between this call and the last
MAX_SECONDS = 120.0  # per runtime, a bound on a hang: the calls take about 15 s and 1 s on 2 idle cores


def resident_mb() -> float:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024


def hammer(embed, inputs: np.ndarray, expected: np.ndarray) -> dict:
    """Calls `embed(inputs[i])` from `THREADS` threads, `CALLS` times in all, and counts calls that raised or
    returned anything but `expected[i]`; resident memory is read at call `RSS_FROM_CALL` and after the last."""
    lock, counter = threading.Lock(), iter(range(CALLS))
    stats = {"calls": 0, "errors": [], "wrong": 0, "max_diff": 0.0}
    deadline = time.monotonic() + MAX_SECONDS

    def worker():
        for call in iter(lambda: next(counter, None), None):
            if time.monotonic() > deadline:
                return
            index = call % len(inputs)
            try:
                result = embed(inputs[index])
            except Exception as error:  # every failure is counted and reported
                result, failure = None, f"{type(error).__name__}: {error}"
            with lock:
                stats["calls"] += 1
                if result is None:
                    stats["errors"].append(failure)
                else:
                    diff = float(np.abs(result - expected[index]).max())
                    stats["wrong"] += diff > 0
                    stats["max_diff"] = max(stats["max_diff"], diff)
                if stats["calls"] == RSS_FROM_CALL:
                    stats["rss_from"] = resident_mb()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats["rss_growth_mb"] = resident_mb() - stats["rss_from"]
    return stats


def check(stats: dict) -> None:
    summary = {**stats, "errors": stats["errors"][:3], "error_count": len(stats["errors"])}
    assert stats["calls"] == CALLS, f"not all calls ran within {MAX_SECONDS} s: {summary}"
    assert not stats["errors"] and stats["wrong"] == 0, summary
    assert stats["rss_growth_mb"] < 50, summary


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny HA-CNN's SavedModel and fp32 TFLite file, and 16 images with their single-thread embeddings."""
    out = tmp_path_factory.mktemp("concurrency")
    saved_model = export_saved_model(HACNN(None, **TINY_MODEL), out, check=False)
    tflite = convert_tflite(saved_model, out / "fp32.tflite", "fp32")
    height, width = TINY_MODEL["input_size"]
    inputs = np.random.default_rng(0).uniform(0, 255, (16, 1, height, width, 3)).astype("float32")
    return saved_model, tflite, inputs


def test_saved_model_signature_from_8_threads(exported):
    saved_model, _, inputs = exported
    signature = tf.saved_model.load(str(saved_model)).signatures["embed_images"]
    embed = lambda images: signature(images=tf.constant(images))["embedding"].numpy()
    expected = np.stack([embed(images) for images in inputs])
    check(hammer(embed, inputs, expected))


def test_tflite_embedder_shared_by_8_threads(exported):
    _, tflite, inputs = exported
    embedder = TFLiteEmbedder(tflite, num_threads=1)
    expected = np.stack([embedder(images) for images in inputs])
    check(hammer(embedder, inputs, expected))
