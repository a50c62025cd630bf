"""The parity report's size column counts every file of a model: an OpenVINO IR is its .xml and its .bin."""

from hacnn_tf.export.parity import model_size_mb


def test_an_openvino_ir_counts_its_weights_file(tmp_path):
    (tmp_path / "model.xml").write_bytes(b"x" * 2**19)
    (tmp_path / "model.bin").write_bytes(b"w" * 3 * 2**19)
    (tmp_path / "other.bin").write_bytes(b"o" * 2**20)  # another model's file is not counted
    assert model_size_mb(tmp_path / "model.xml") == 2.0


def test_a_folder_counts_every_file_below_it(tmp_path):
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"g" * 2**19)
    (tmp_path / "variables" / "variables.data").write_bytes(b"w" * 2**19)
    assert model_size_mb(tmp_path) == 1.0
