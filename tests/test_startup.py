"""`hacnn_tf._startup`: the native libraries' noise kept off stderr, everything else passed through."""

import os
import subprocess
import sys

from hacnn_tf._startup import native_log_environment, without_native_noise

NOISE = [
    "W0000 00:00:1796641594.284622    7828 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
    "I0000 00:00:1796641594.285208    7828 reader.cc:83] Reading SavedModel from: /tmp/tmp4cnimyu3/batch1",
    "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]
KEPT = [
    "E0000 00:00:1796641594.284622    7828 util.cc:131] a real error",
    "Traceback (most recent call last):",
    "UserWarning: something worth reading",
]
# Native code writing to the stderr file descriptor inside `quiet_native_output`, then Python after it.
WRITER = """
import os, sys
from hacnn_tf._startup import quiet_native_output
lines = sys.argv[1:]
with quiet_native_output():
    for line in lines:
        os.write(2, (line + "\\n").encode())
print("after the block", file=sys.stderr)
"""


def test_without_native_noise_keeps_errors_and_python_output(monkeypatch):
    monkeypatch.delenv("HACNN_TF_SHOW_TF_STARTUP", raising=False)
    text = "".join(f"{line}\n" for pair in zip(NOISE, [*KEPT, ""]) for line in pair if line)
    assert without_native_noise(text) == "".join(f"{line}\n" for line in KEPT)
    monkeypatch.setenv("HACNN_TF_SHOW_TF_STARTUP", "1")
    assert without_native_noise(text) == text


def test_quiet_native_output_filters_what_native_code_writes_to_the_descriptor(monkeypatch):
    monkeypatch.delenv("HACNN_TF_SHOW_TF_STARTUP", raising=False)
    lines = [NOISE[0], KEPT[0], NOISE[3], KEPT[2]]
    quiet = subprocess.run([sys.executable, "-c", WRITER, *lines], capture_output=True, text=True, check=True)
    assert quiet.stderr.splitlines() == [KEPT[0], KEPT[2], "after the block"]
    shown = subprocess.run(
        [sys.executable, "-c", WRITER, *lines],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HACNN_TF_SHOW_TF_STARTUP": "1"},
    )
    assert shown.stderr.splitlines()[-5:] == [*lines, "after the block"]  # after TensorFlow's own start-up lines


def test_child_environment_quiets_tensorflow_unless_shown(monkeypatch):
    monkeypatch.delenv("HACNN_TF_SHOW_TF_STARTUP", raising=False)
    assert native_log_environment({})["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert native_log_environment({"TF_CPP_MIN_LOG_LEVEL": "0"})["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's choice
    monkeypatch.setenv("HACNN_TF_SHOW_TF_STARTUP", "1")
    assert "TF_CPP_MIN_LOG_LEVEL" not in native_log_environment({})
