"""`hacnn-tf demo`'s export: its extras are checked before anything is trained, and a rerun keeps the export of the
run before it until its own has succeeded."""

import pathlib

import pandas as pd
import pytest
from conftest import REFUSAL_SECONDS, run_without

from hacnn_tf.jobs import demo


def test_the_demo_refuses_without_litert_before_training(tmp_path):
    workdir = tmp_path / "demo"
    code, _, stderr, seconds = run_without(["ai_edge_litert"], ["demo", "--workdir", workdir])
    lines = stderr.strip().splitlines()
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("hacnn-tf demo: error: hacnn-tf demo exports saved_model-fp32, tflite-fp32"), lines
    assert "need the litert extra: pip install 'hacnn-tf[litert]'" in lines[-1]
    assert seconds < REFUSAL_SECONDS, seconds
    assert not (workdir / "data").exists() and not (workdir / "train").exists()  # nothing generated or trained


def previous_export(export_dir: pathlib.Path) -> dict:
    (export_dir / "tflite-fp32").mkdir(parents=True)
    (export_dir / "tflite-fp32" / "hacnn.tflite").write_bytes(b"the previous run's model")
    return {p.relative_to(export_dir).as_posix(): p.read_bytes() for p in export_dir.rglob("*") if p.is_file()}


def files(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_failed_export_keeps_the_previous_one_and_a_good_one_replaces_it(tmp_path, monkeypatch):
    export_dir = tmp_path / "export"
    before = previous_export(export_dir)
    seen = {}

    def failing(model, out, formats, dataset, calibration_images, saved_model_options):
        seen["existed"] = out.exists()
        (out / "saved_model-fp32").mkdir(parents=True)
        (out / "saved_model-fp32" / "half").write_bytes(b"a format written before the failure")
        raise OSError(28, "No space left on device")

    dataset = type("Dataset", (), {"query": pd.DataFrame({"path": [str(export_dir / "tflite-fp32" / "hacnn.tflite")]})})
    monkeypatch.setattr(demo, "export_formats", failing)
    with pytest.raises(OSError, match="No space left"):
        demo.export_and_compare(None, dataset, export_dir)
    assert seen["existed"] is False  # the export ran into an empty folder, the previous one aside
    assert files(export_dir) == before and sorted(p.name for p in tmp_path.iterdir()) == ["export"]

    def succeeding(model, out, formats, dataset, calibration_images, saved_model_options):
        assert list(formats) == list(demo.DEMO_FORMATS)
        for name in formats:
            (out / name).mkdir(parents=True)
            (out / name / "model").write_bytes(name.encode())
        return {name: out / name for name in formats}

    monkeypatch.setattr(demo, "export_formats", succeeding)
    monkeypatch.setattr(demo, "retrieval_report", lambda *args, **kwargs: pd.DataFrame({"mAP": [1.0]}))
    demo.export_and_compare(None, dataset, export_dir)
    assert files(export_dir) == {f"{name}/model": name.encode() for name in demo.DEMO_FORMATS}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # the previous export is gone
