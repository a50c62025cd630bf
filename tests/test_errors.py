"""The user-error classes and the extras check."""

import sys

import pytest

from hacnn_tf import errors


def test_user_errors_are_the_builtin_errors_callers_catch():
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.ConfigError, errors.UserError)
    assert issubclass(errors.DataError, ValueError)
    assert issubclass(errors.InputFileError, FileNotFoundError)
    assert issubclass(errors.MissingExtraError, ImportError)


def test_missing_extras_finds_an_uninstalled_module(monkeypatch):
    monkeypatch.setitem(errors.EXTRA_MODULES, "litert", ("hacnn_tf_no_such_module",))
    assert errors.missing_extras("litert", "torch") == ["litert"]
    with pytest.raises(
        errors.MissingExtraError, match=r"tflite-int8 needs the litert extra: pip install 'hacnn-tf\[litert\]'"
    ):
        errors.require_extras("tflite-int8", "litert")
    assert "hacnn_tf_no_such_module" not in sys.modules


def test_installed_extras_pass_and_unknown_names_are_refused():
    errors.require_extras("ONNX export", "onnx", "openvino", "litert", "torch")  # the test environment has them all
    with pytest.raises(KeyError, match="unknown extras"):
        errors.missing_extras("tensorrt")


def test_install_hint_adds_the_serving_api_without_deps():
    assert errors.install_hint("onnx", "litert") == "pip install 'hacnn-tf[litert,onnx]'"
    assert errors.install_hint("serving").endswith("pip install --no-deps tensorflow-serving-api==2.21.0")


def test_an_export_into_a_file_is_a_user_error_naming_it(tmp_path):
    """`hacnn-tf export MODEL OUT` with OUT a file exited 1 with a bare `export: OUT is a file` line."""
    from hacnn_tf.errors import OutputError, UserError
    from hacnn_tf.export.all import export_all

    out = tmp_path / "afile"
    out.write_text("not a folder")
    with pytest.raises(OutputError) as refused:
        export_all(None, out, ["saved_model-fp32"])
    assert isinstance(refused.value, UserError) and str(refused.value).startswith(f"{out} is a file: give a folder")
    assert out.read_text() == "not a folder"
