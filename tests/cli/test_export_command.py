"""`hacnn-tf export`: one run of the real command on a tiny checkpoint and data set, converting from the session's
SavedModel, with one format of each converter (manifests against the files' sha256, parity against the targets, the
SavedModel options, the printed lines, the report, a parity miss), and its refusals. `export_all` itself is tested on
every format in tests/export/test_export_all.py; the whole run of `--format all` took 2.5 min here."""

import concurrent.futures
import contextlib
import errno
import hashlib
import io
import json
import os
import pathlib
import re

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import REFUSAL_SECONDS, run_without

from hacnn_tf.cli import main
from hacnn_tf.cli.export import format_names
from hacnn_tf.export import all as export_all_module
from hacnn_tf.export.all import TARGETS, meets
from hacnn_tf.manifest import MANIFEST, verify_manifest

# What the run writes: a copy of the given SavedModel, a bf16 one exported with the command's SavedModel options, the
# TFLite fp32 and calibrated int8 files (`--format tflite --tflite-variants fp32 int8`), ONNX and OpenVINO.
FORMATS = ("saved_model-fp32", "saved_model-bf16", "tflite-fp32", "tflite-int8", "onnx-fp32", "openvino-fp32")
MISSED = "tflite-fp32"  # given an unreachable target in the run: the command must exit with its name
CHECK_IMAGES = 24
MAX_PIXELS = 150 * 110  # the largest image of the SavedModel's self-check: a 160 x 104 one is refused


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, export_model) -> pathlib.Path:
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.keras"
    export_model.save(path)
    return path


def dataset_root(dataset) -> pathlib.Path:
    return pathlib.Path(dataset.train["path"].iloc[0]).parents[1]


@pytest.fixture(scope="module")
def exported(checkpoint, tiny_synthetic, exported_saved_model, tmp_path_factory):
    """`(out, stdout, exit message)` of `hacnn-tf export CKPT OUT --format ... --saved-model ...` with one target
    unreachable."""
    out = tmp_path_factory.mktemp("cli") / "exported"
    warmup = pathlib.Path(tiny_synthetic.query["path"].iloc[0]).parent
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setitem(export_all_module.TARGETS, MISSED, (0.0, 1.5))  # a cosine above 1
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "export",
                    str(checkpoint),
                    str(out),
                    "--format",
                    "saved_model",
                    "saved_model-bf16",
                    "tflite",
                    "onnx-fp32",
                    "openvino-fp32",
                    "--tflite-variants",
                    "fp32",
                    "int8",
                    "--saved-model",
                    str(exported_saved_model),
                    "--dataset",
                    "market1501",
                    "--root",
                    str(dataset_root(tiny_synthetic)),
                    "--calibration-images",
                    "16",
                    "--check-images",
                    str(CHECK_IMAGES),
                    "--model-name",
                    "reid",
                    "--version",
                    "2",
                    "--warmup-images",
                    str(warmup),
                    "--max-pixels",
                    str(MAX_PIXELS),
                    "--report",
                ]
            )
    return out, stdout.getvalue(), str(exit_info.value.code)


def test_format_names_expand_aliases_in_order_once():
    assert format_names(["saved_model"], ["int8"]) == ["saved_model-fp32"]
    assert format_names(["tflite", "onnx-fp32", "tflite-int8"], ["fp32", "int8"]) == [
        "tflite-fp32",
        "tflite-int8",
        "onnx-fp32",
    ]
    assert format_names(["all", "saved_model"], []) == list(export_all_module.FORMATS)


def test_every_format_but_the_miss_is_written_with_its_manifest(exported):
    out, _, message = exported
    written = [name for name in FORMATS if name != MISSED]
    assert sorted(p.name for p in out.iterdir()) == sorted([*written, "parity.csv", "parity.md"])
    assert f"['{MISSED}'] missed their parity targets" in message and message.startswith("export: ")
    for name in written:
        manifest = json.loads((out / name / MANIFEST).read_text())
        assert (manifest["format"], manifest["precision"]) == tuple(name.split("-", 1))
        files = sorted(
            p.relative_to(out / name).as_posix() for p in (out / name).rglob("*") if p.is_file() and p.name != MANIFEST
        )
        assert sorted(manifest["files"]) == files
        for file, digest in manifest["files"].items():
            assert hashlib.sha256((out / name / file).read_bytes()).hexdigest() == digest, (name, file)
        parity = manifest["notes"]["parity"]
        assert parity["images"] == CHECK_IMAGES  # sampled from the 40 query and gallery images
        assert manifest["notes"].get("calibration_images") == (16 if name == "tflite-int8" else None)
        assert meets(parity[name], TARGETS[name]), (name, parity[name])


def test_saved_models_get_the_name_version_warmup_and_pixel_limit(exported, exported_saved_model, tiny_synthetic):
    from tensorflow_serving.apis import prediction_log_pb2

    out, _, _ = exported
    for name in ("saved_model-fp32", "saved_model-bf16"):
        manifest = json.loads((out / name / MANIFEST).read_text())
        assert manifest["model"] == "reid/2"
        assert "reid/2/assets.extra/tf_serving_warmup_requests" in manifest["files"]
    # The given SavedModel is copied as it is; the bf16 one's warm-up requests are for model `reid`, built from the
    # files of --warmup-images in name order.
    copied = out / "saved_model-fp32" / "reid" / "2"
    assert all(
        (copied / p.relative_to(exported_saved_model)).read_bytes() == p.read_bytes()
        for p in exported_saved_model.rglob("*")
        if p.is_file()
    )
    record = next(
        iter(tf.data.TFRecordDataset(str(out / "saved_model-bf16/reid/2/assets.extra/tf_serving_warmup_requests")))
    ).numpy()
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    first = min(pathlib.Path(path) for path in tiny_synthetic.query["path"])
    assert request.model_spec.name == "reid" and request.inputs["image_bytes"].string_val[0] == first.read_bytes()
    serve = tf.saved_model.load(str(out / "saved_model-bf16" / "reid" / "2")).signatures["serving_default"]
    image = np.random.default_rng(0).integers(0, 255, (160, 64, 3), dtype=np.uint8)
    fits = tf.io.encode_jpeg(image).numpy()
    too_large = tf.io.encode_jpeg(np.concatenate([image, image[:, :40]], axis=1)).numpy()  # 160 x 104
    assert serve(image_bytes=tf.constant([fits]))["embedding"].shape == (1, 64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than the limit of 16500 pixels"):
        serve(image_bytes=tf.constant([too_large]))


def test_one_line_per_written_folder_gives_its_parity(exported):
    out, stdout, _ = exported
    lines = [line for line in stdout.splitlines() if line.startswith("wrote ")]
    written = [name for name in FORMATS if name != MISSED]
    assert [line.split()[1] for line in lines] == [str(out / name) for name in written]
    for name, line in zip(written, lines):
        for check, result in json.loads((out / name / MANIFEST).read_text())["notes"]["parity"].items():
            if check != "images":
                assert (
                    f"{check} max abs diff {result['max_abs_diff']:.2e}, mean cosine {result['mean_cosine']:.6f}"
                    in line
                )


def test_report_evaluates_every_written_format_on_the_whole_split(exported):
    out, _, _ = exported
    report = pd.read_csv(out / "parity.csv", index_col=0)
    assert list(report.index) == ["keras", *(name for name in FORMATS if name != MISSED)]
    # (load_embedder runs OpenVINO at the CPU's default precision, bf16 on CPUs with AVX512-BF16 or AMX.)
    float32 = [name for name in report.index if name.endswith("-fp32") and not name.startswith("openvino")]
    assert (report.loc[float32, "max_abs_diff"] <= 1e-4).all()
    assert np.allclose(report.loc[float32, "mAP"], report.loc["keras", "mAP"], atol=1e-6)


def test_refusals_name_the_option(checkpoint, tmp_path, capsys):
    out = tmp_path / "exported"
    (out / "onnx-fp32").mkdir(parents=True)
    calibrated = "quantised on calibration images: give --dataset/--root"
    cases = {
        ("--format", "tflite-int8"): f"export: tflite-int8: {calibrated}",
        ("--format", "all"): f"export: {', '.join(export_all_module.CALIBRATED)}: {calibrated}",
        ("--dataset", "market1501"): "--dataset and --root go together",
        ("--report",): "--report evaluates on the query/gallery split of --dataset/--root",
        ("--version", "0"): "--version must be positive",
        ("--format", "onnx-fp32"): "onnx-fp32'] exist: export into a new folder",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace("]", r"\]")):
            main(["export", str(checkpoint), str(out), *args])
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(checkpoint), str(out), "--format", "onnx-fp16"])
    assert exit_info.value.code == 2 and "invalid choice: 'onnx-fp16'" in capsys.readouterr().err


def test_bad_paths_and_values_are_refused_before_any_conversion(
    checkpoint, exported_saved_model, tiny_synthetic, tmp_path, monkeypatch, capsys
):
    """Each case once gave a traceback, or an error deep in a conversion (an empty OUT left behind), or Keras' "File
    not found" for a truncated .keras file."""
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(checkpoint.read_bytes()[:20000])
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    not_a_saved_model = tmp_path / "not_a_saved_model"
    not_a_saved_model.mkdir()
    out = tmp_path / "out"
    cases = {
        (str(tmp_path / "missing.keras"), str(out)): f"Checkpoint not found: {tmp_path / 'missing.keras'}",
        (str(truncated), str(out)): f"{truncated} is not a .keras file \\(a zip archive\\): truncated or corrupt",
        (str(checkpoint), str(out), "--max-pixels", "0"): "--max-pixels must be positive; got 0",
        (str(checkpoint), str(out), "--model-name", "../x"): "--model-name must be a folder name",
        (str(checkpoint), str(out), "--warmup-images", str(tmp_path / "none")): f"{tmp_path / 'none'} is not a folder",
        (
            str(checkpoint),
            str(out),
            "--format",
            "onnx-fp32",
            "--dataset",
            "market1501",
            "--root",
            str(tmp_path / "none"),
        ): f"data set root {tmp_path / 'none'} does not exist",
        (str(checkpoint), str(a_file), "--format", "onnx-fp32"): f"error: {a_file} is a file: give a folder",
        (
            str(checkpoint),
            str(out),
            "--format",
            "onnx-fp32",
            "--saved-model",
            str(not_a_saved_model),
        ): f"export: {not_a_saved_model} is not a SavedModel \\(no saved_model.pb in it\\)",
        (
            str(checkpoint),
            str(out),
            "--format",
            "onnx-fp32",
            "--saved-model",
            str(exported_saved_model.parent),
        ): "is not a SavedModel",  # the model folder instead of its version folder
    }
    for args, message in cases.items():
        capsys.readouterr()
        with pytest.raises(SystemExit) as refused:
            main(["export", *args])
        # A UserError leaves through SystemExit(message); an OutputError through run_command (one line, exit 2).
        said = f"{refused.value.code}\n{capsys.readouterr().err}"
        assert re.search(message, said), (args, said)
        assert refused.value.code != 0, args
    assert not out.exists() and a_file.read_text() == ""
    # More calibration images than the training split has: all of them calibrate, and the command says so.
    monkeypatch.setattr("hacnn_tf.jobs.export.export_formats", lambda *args: {})
    main(
        [
            "export",
            str(checkpoint),
            str(out),
            "--format",
            "tflite-int8",
            "--dataset",
            "market1501",
            "--root",
            str(dataset_root(tiny_synthetic)),
            "--calibration-images",
            "100000",
        ]
    )
    assert (
        f"--calibration-images 100000: the training split has {len(tiny_synthetic.train)} images; calibrating "
        "on all of them"
    ) in capsys.readouterr().out


def tree(folder: pathlib.Path) -> dict[str, bytes | None]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def assert_one_error_line(stderr: str, *parts: str) -> str:
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert "Traceback" not in stderr and len(errors) == 1 and errors[0] == lines[-1], stderr[-3000:]
    assert errors[0].startswith("hacnn-tf export: error: "), errors[0]
    assert all(part in errors[0] for part in parts), errors[0]
    return errors[0]


@pytest.mark.slow
def test_a_missing_extra_is_refused_in_seconds_leaving_out_as_it_was(checkpoint, tmp_path):
    """`--format all` on an install without LiteRT and OpenVINO ran 100 s (the SavedModel, its self-check, the TFLite
    conversions), then died with `ModuleNotFoundError: ai_edge_litert` and left an empty OUT. Now the extras are
    checked first: one line with the pip command; OUT keeps what it held, less the staging folder a killed export
    left (any run removes it, refused or not)."""
    out = tmp_path / "exported"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "README.txt").write_text("the user's own file")
    before = tree(out)
    killed = out / f"{export_all_module.STAGING_PREFIX}killed" / "tflite-fp32"
    killed.mkdir(parents=True)
    (killed / "hacnn.tflite").write_bytes(b"half a file")
    code, stdout, stderr, seconds = run_without(
        ["ai_edge_litert", "openvino"], ["export", checkpoint, out, "--format", "all"]
    )
    tflite = [name for name in export_all_module.FORMATS if name.startswith("tflite")]
    assert code == 2, stderr[-3000:]
    assert_one_error_line(
        stderr,
        f"{', '.join(tflite)} need the litert extra; openvino-fp32, openvino-int8 need the "
        "openvino extra: pip install 'hacnn-tf[litert,openvino]'; or give --skip-missing",
    )
    assert seconds < REFUSAL_SECONDS, seconds
    assert tree(out) == before and not stdout
    # Nothing to create either: a new OUT is not made.
    code, _, stderr, _ = run_without(["onnxruntime"], ["export", checkpoint, tmp_path / "new", "--format", "onnx-fp32"])
    assert code == 2 and not (tmp_path / "new").exists()
    assert_one_error_line(stderr, "onnx-fp32 needs the onnx extra: pip install 'hacnn-tf[onnx]'")


@pytest.mark.slow
def test_skip_missing_writes_what_it_can_and_lists_the_rest(checkpoint, exported_saved_model, tiny_synthetic, tmp_path):
    out = tmp_path / "exported"
    warmup = pathlib.Path(tiny_synthetic.query["path"].iloc[0]).parent
    cases = {
        "skip": (
            ["ai_edge_litert"],
            [
                "export",
                checkpoint,
                out,
                "--format",
                "saved_model",
                "tflite-fp32",
                "--saved-model",
                exported_saved_model,
                "--skip-missing",
            ],
        ),
        # A torchreid checkpoint needs torch whatever the formats; so do nothing but skipped formats.
        "torch": (["torch"], ["export", tmp_path / "model.pth", tmp_path / "torch", "--skip-missing"]),
        "nothing left": (
            ["ai_edge_litert"],
            ["export", checkpoint, tmp_path / "none", "--format", "tflite-fp32", "--skip-missing"],
        ),
        # Warm-up requests are written and replayed with tensorflow_serving: the SavedModels exported need it.
        "serving": (
            ["tensorflow_serving"],
            [
                "export",
                checkpoint,
                tmp_path / "serving",
                "--format",
                "saved_model",
                "saved_model-bf16",
                "onnx-fp32",
                "--saved-model",
                exported_saved_model,
                "--warmup-images",
                warmup,
            ],
        ),
    }
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(lambda case: run_without(*case), cases.values())))
    code, stdout, stderr, _ = results["skip"]
    assert code == 0, stderr[-3000:]
    assert stdout.splitlines()[0] == (
        "export: skipping tflite-fp32 (--skip-missing): tflite-fp32 needs the litert "
        "extra: pip install 'hacnn-tf[litert]'"
    )
    assert stdout.splitlines()[-1] == "export: skipped (extras not installed): tflite-fp32"
    assert sorted(p.name for p in out.iterdir()) == ["saved_model-fp32"]
    verify_manifest(out / "saved_model-fp32")
    code, _, stderr, _ = results["torch"]
    assert code == 2 and not (tmp_path / "torch").exists()
    assert_one_error_line(
        stderr,
        f"reading the torchreid checkpoint {tmp_path / 'model.pth'} needs the torch extra: "
        "pip install 'hacnn-tf[torch]'",
    )
    code, _, stderr, _ = results["nothing left"]
    assert code == 2 and not (tmp_path / "none").exists()
    assert_one_error_line(
        stderr, "tflite-fp32 needs the litert extra: pip install 'hacnn-tf[litert]'; none of the formats can be written"
    )
    code, _, stderr, _ = results["serving"]
    assert code == 2 and not (tmp_path / "serving").exists()
    assert_one_error_line(
        stderr,
        "saved_model-bf16 needs the serving extra: pip install 'hacnn-tf[serving]' && pip "
        "install --no-deps tensorflow-serving-api==2.21.0; or give --skip-missing",
    )


def test_a_full_disk_keeps_the_formats_written_and_names_the_failed_one(
    checkpoint, exported_saved_model, tmp_path, monkeypatch, capsys
):
    """ENOSPC while the ONNX file is written (injected here; tests/reliability/test_export_crash.py fills a real
    tmpfs): the SavedModel written before it stays in OUT, ONNX is named, and OpenVINO was not started."""

    def full_disk(saved_model_dir, output_path, *args, **kwargs):
        pathlib.Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(output_path).write_bytes(b"\0" * 1000)  # a partial file in the staging folder
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_path))

    monkeypatch.setattr("hacnn_tf.export.onnx.convert_onnx", full_disk)
    out = tmp_path / "exported"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "export",
                str(checkpoint),
                str(out),
                "--format",
                "saved_model",
                "onnx-fp32",
                "openvino-fp32",
                "--saved-model",
                str(exported_saved_model),
            ]
        )
    assert exit_info.value.code == 2
    stdout, stderr = capsys.readouterr()
    line = assert_one_error_line(
        stderr,
        "onnx-fp32/hacnn.onnx: No space left on device: onnx-fp32 failed; not "
        f"started: openvino-fp32; kept in {out}: saved_model-fp32; ",
        f" MiB free in {out}, about ",
        " MiB needed for onnx-fp32, openvino-fp32: free space",
    )
    source_mib = sum(p.stat().st_size for p in exported_saved_model.rglob("*") if p.is_file()) / 2**20
    assert f"about {3 * source_mib:.1f} MiB needed" in line  # two formats and the converters' temporary files
    assert f"wrote {out / 'saved_model-fp32'} " in stdout and "export stopped" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["saved_model-fp32"]  # no staging folder left
    verify_manifest(out / "saved_model-fp32")
