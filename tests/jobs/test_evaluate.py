import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_MODEL
from PIL import Image

from hacnn_tf import HACNN
from hacnn_tf.evaluation import average_query_expansion, compute_distance_matrix, evaluate_rank, re_ranking_features
from hacnn_tf.evaluation.features import extract_features
from hacnn_tf.visualization.curves import read_cmc_csv
from training.evaluate import main


@pytest.fixture(scope="module")
def tiny_model():
    return HACNN(8, **TINY_MODEL)


def test_flip_averaging_is_the_mean_of_the_image_and_mirror_embeddings(tmp_path, tiny_model):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3):
        pixels = rng.integers(0, 256, size=(80, 40, 3), dtype=np.uint8)
        for name, array in ((f"{i}.png", pixels), (f"{i}_mirror.png", pixels[:, ::-1])):
            Image.fromarray(np.ascontiguousarray(array)).save(tmp_path / name)
        rows.append((str(tmp_path / f"{i}.png"), str(tmp_path / f"{i}_mirror.png")))
    originals = pd.DataFrame({"path": [a for a, _ in rows]})
    mirrors = pd.DataFrame({"path": [b for _, b in rows]})
    expected = 0.5 * (extract_features(tiny_model, originals) + extract_features(tiny_model, mirrors))
    np.testing.assert_allclose(extract_features(tiny_model, originals, flip=True), expected, atol=1e-5)
    assert not np.allclose(extract_features(tiny_model, originals), expected, atol=1e-3)


@pytest.mark.slow
def test_evaluate_command_writes_tables_and_cmc(tmp_path, tiny_model, tiny_synthetic, capsys):
    checkpoint = tmp_path / "tiny.keras"
    tiny_model.save(checkpoint)
    root = tiny_synthetic.train["path"].iloc[0].rsplit("/", 2)[0]
    main([str(checkpoint), "market1501", root, "--output", str(tmp_path / "eval"), "--rerank", "--aqe"])
    printed = capsys.readouterr().out
    assert "re-ranking" in printed and "mINP" in printed and "embedding: " in printed
    table = pd.read_csv(tmp_path / "eval.csv", index_col=0)
    rows = ["tiny.keras", "tiny.keras + re-ranking", "tiny.keras + AQE", "tiny.keras + AQE + re-ranking"]
    assert list(table.index) == rows
    assert list(table.columns) == ["mAP", "mINP", "rank1", "rank5", "rank10", "rank20", "seconds", "peak_mib"]
    assert (table["seconds"] > 0).all() and (table["peak_mib"] > 100).all()
    assert (tmp_path / "eval.md").read_text().startswith("| model |")
    assert (tmp_path / "eval_cmc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = read_cmc_csv(tmp_path / "eval_cmc.csv")
    assert list(curves) == rows
    # The command's numbers are evaluate_rank on the model's embeddings.
    query = extract_features(tiny_model, tiny_synthetic.query)
    gallery = extract_features(tiny_model, tiny_synthetic.gallery)
    ids = (
        tiny_synthetic.query["pid"].to_numpy(),
        tiny_synthetic.gallery["pid"].to_numpy(),
        tiny_synthetic.query["camid"].to_numpy(),
        tiny_synthetic.gallery["camid"].to_numpy(),
    )
    cmc, mean_ap, mean_inp = evaluate_rank(compute_distance_matrix(query, gallery), *ids, return_minp=True)
    assert table.loc["tiny.keras", "mAP"] == pytest.approx(mean_ap, abs=1e-6)
    assert table.loc["tiny.keras", "mINP"] == pytest.approx(mean_inp, abs=1e-6)
    assert table.loc["tiny.keras", "rank1"] == pytest.approx(cmc[0], abs=1e-6)
    np.testing.assert_allclose(curves["tiny.keras"], cmc, atol=1e-6)
    expanded_map = evaluate_rank(compute_distance_matrix(*average_query_expansion(query, gallery)), *ids)[1]
    assert table.loc["tiny.keras + AQE", "mAP"] == pytest.approx(expanded_map, abs=1e-6)
    reranked_map = evaluate_rank(re_ranking_features(query, gallery), *ids)[1]
    assert table.loc["tiny.keras + re-ranking", "mAP"] == pytest.approx(reranked_map, abs=1e-6)


def test_evaluate_command_can_hide_minp(tmp_path, tiny_model, tiny_synthetic, capsys):
    checkpoint = tmp_path / "tiny.keras"
    tiny_model.save(checkpoint)
    root = tiny_synthetic.train["path"].iloc[0].rsplit("/", 2)[0]
    main([str(checkpoint), "market1501", root, "--output", str(tmp_path / "eval"), "--no-minp"])
    header = next(line for line in capsys.readouterr().out.splitlines() if "mAP" in line)
    assert "mINP" not in header
    assert "mINP" in pd.read_csv(tmp_path / "eval.csv").columns  # the written table keeps it


def test_evaluate_command_reads_torchreid_checkpoints_and_rejects_others(tmp_path, torchreid_hacnn):
    from hacnn_tf.convert.checkpoint import load_checkpoint

    path = tmp_path / "model.pth.tar"
    torch.save({"state_dict": torchreid_hacnn.HACNN(5, use_gpu=False).state_dict()}, path)
    assert load_checkpoint(path).num_classes == 5
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown checkpoint type"):
        load_checkpoint(tmp_path / "weights.h5")


def test_an_export_is_evaluated_as_its_checkpoint_and_the_results_go_beside_it(
    tmp_path, export_model, exported_formats, tiny_synthetic, capsys
):
    """One evaluation path: an export format folder, a model file in one and a SavedModel version folder give the
    metrics of the model they were exported from (the same decoding, `Embedder.embed_files`); the tables go beside
    the format folder, whose manifest still verifies."""
    from hacnn_tf.manifest import manifest_model, verify_manifest

    checkpoint = tmp_path / "tiny.keras"
    export_model.save(checkpoint)
    root = tiny_synthetic.train["path"].iloc[0].rsplit("/", 2)[0]
    main([str(checkpoint), "market1501", root, "--output", str(tmp_path / "keras")])
    reference = pd.read_csv(tmp_path / "keras.csv", index_col=0).iloc[0]
    assert 0.0 < reference["mAP"] < 1.0
    tflite_file = next(exported_formats["tflite-fp32"].glob("*.tflite"))
    version = manifest_model(exported_formats["saved_model-fp32"])
    assert (version / "saved_model.pb").is_file()
    for model, stem in (
        (exported_formats["onnx-fp32"], exported_formats["onnx-fp32"].parent / "onnx-fp32_market1501"),
        (tflite_file, exported_formats["tflite-fp32"].parent / "tflite-fp32_market1501"),
        (version, exported_formats["saved_model-fp32"].parent / "saved_model-fp32_market1501"),
    ):
        main([str(model), "market1501", root])
        table = pd.read_csv(f"{stem}.csv", index_col=0).iloc[0]
        for metric in ("mAP", "mINP", "rank1", "rank5"):
            assert table[metric] == pytest.approx(reference[metric], abs=1e-3), (model, metric)
    for folder in ("onnx-fp32", "tflite-fp32", "saved_model-fp32"):
        verify_manifest(exported_formats[folder])
    with pytest.raises(SystemExit) as refused:
        main([str(tflite_file), "market1501", root, "--align-corners"])
    assert refused.value.code == 2
    assert "align_corners applies to torchreid checkpoints" in capsys.readouterr().err
