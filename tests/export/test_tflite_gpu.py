"""The fp32 and fp16 TFLite files stay compatible with the mobile GPU delegate (TFLite's own analyzer)."""

import contextlib
import io

import pytest
import tensorflow as tf


@pytest.mark.parametrize("variant", ["fp32", "fp16"])
def test_gpu_delegate_compatible(exported_formats, variant):
    report = io.StringIO()
    with contextlib.redirect_stdout(report):  # the analyzer prints its report
        tf.lite.experimental.Analyzer.analyze(
            model_path=str(exported_formats[f"tflite-{variant}"] / "hacnn.tflite"), gpu_compatibility=True
        )
    report = report.getvalue()
    assert "CONV_2D" in report  # the analysis ran on the graph
    assert "GPU COMPATIBILITY WARNING" not in report, report[-3000:]
    assert "Your model looks compatible with GPU delegate" in report
