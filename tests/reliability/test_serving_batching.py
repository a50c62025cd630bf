"""TF Serving's server-side batching of `embed_boxes` / `embed_boxes_pixels` requests, replayed through TF Serving's
session loader: requests of one width merged (with the batch padded up to an allowed size) each get the result they
get alone; what `pad_variable_length_inputs` would do to requests of different widths (wider replies, other crops
at frame borders) is why the batching config must keep it off, and the config reader refuses it; a box shape the
signature refuses is InvalidArgument for that request.

`merged_like_tf_serving` and `split_like_tf_serving` follow tensorflow/serving's `BatchingSession::
MergeInputTensors` / `SplitOutputTensors` (`tensorflow_serving/batching/batching_session.cc`) and `AddPadding`
(`batching_util.cc`): inputs concatenated along the batch axis, the batch padded up to the next allowed size with
copies of the last request's first row, and, with padding on, every tensor padded past the batch axis to the
batch's largest shape with the tensor's own first value; the outputs are split along the batch axis only.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from hacnn_tf.serving.config import read_batching_parameters
from hacnn_tf.tracking import ReIDEmbedder

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALLOWED_BATCH_SIZES = list(
    read_batching_parameters(ROOT / "export" / "tf_serving" / "batching_parameters.txt").allowed_batch_sizes
)


def merged_like_tf_serving(
    requests: list[dict[str, np.ndarray]], pad_variable_length_inputs: bool = False
) -> dict[str, np.ndarray]:
    """The one feed TF Serving's batching session runs for `requests` (each `{input: array}`, one batch axis)."""
    rows = sum(len(next(iter(request.values()))) for request in requests)
    batch_size = next(size for size in ALLOWED_BATCH_SIZES if size >= rows)
    merged = {}
    for name in requests[0]:
        tensors = [request[name] for request in requests]
        if pad_variable_length_inputs:
            widest = tuple(np.max([tensor.shape for tensor in tensors], axis=0)[1:])
            tensors = [
                t
                if t.shape[1:] == widest
                else np.pad(t, [(0, 0)] + [(0, w - s) for w, s in zip(widest, t.shape[1:])], constant_values=t.flat[0])
                for t in tensors
            ]
        elif len({tensor.shape[1:] for tensor in tensors}) > 1:
            raise AssertionError(f"TF Serving fails the whole batch (FailedPrecondition): {name} shapes differ")
        tensors.append(np.repeat(tensors[-1][:1], batch_size - rows, axis=0))
        merged[name] = np.concatenate(tensors)
    return merged


def split_like_tf_serving(output: np.ndarray, requests: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    sizes = [len(next(iter(request.values()))) for request in requests]
    return np.split(output, np.cumsum(sizes))[: len(sizes)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size, dtype=np.uint8) for size in ((90, 120, 3), (60, 80, 3), (90, 120, 3))]


# Boxes inside, past the right border of the 80-pixel-wide frame, of padding and invalid.
BOXES = np.array([[5, 5, 40, 50], [60, 10, 119, 59], [0, 0, 0, 0], [3, 3, 5, 3]], np.float32)


def test_the_batching_config_reader_refuses_variable_length_padding(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "batching_parameters.txt"
    path.write_text(
        (ROOT / "export" / "tf_serving" / "batching_parameters.txt")
        .read_text()
        .replace("pad_variable_length_inputs: false", "pad_variable_length_inputs: true")
    )
    with pytest.raises(ValueError) as error:
        read_batching_parameters(path)
    assert str(error.value).startswith(
        f"{path}: pad_variable_length_inputs must be false: TF Serving pads merged requests with their first value"
    )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("signature", ["embed_boxes", "embed_boxes_pixels"])
def test_requests_of_one_width_merged_and_padded_get_their_alone_results(
    session, export_model, frames, signature: str
) -> None:
    """Three requests of 1, 1 and 1 rows (3 rows, padded to the allowed batch size 4 with a copy of a row) and of
    four boxes each; each gets what it gets alone and what ReIDEmbedder gives on the Keras model."""
    same_size = [frame[:60, :80] for frame in frames]
    if signature == "embed_boxes":
        requests = [
            {"frame_bytes": np.array([tf.io.encode_png(frame).numpy()]), "boxes": BOXES[None] + shift}
            for frame, shift in zip(frames, (0, 1, 2))
        ]
        used_frames = frames
    else:
        requests = [{"frames": frame[None], "boxes": BOXES[None] + shift} for frame, shift in zip(same_size, (0, 1, 2))]
        used_frames = same_size
    merged = merged_like_tf_serving(requests)
    assert len(merged["boxes"]) == 4  # padded up to an allowed batch size
    replies = split_like_tf_serving(session.run(signature, merged)["embedding"], requests)
    reference = ReIDEmbedder(export_model)
    for request, reply, frame in zip(requests, replies, used_frames):
        alone = session.run(signature, request)["embedding"]
        np.testing.assert_allclose(reply, alone, atol=1e-5, rtol=0)
        np.testing.assert_allclose(reply[0], reference([frame], [request["boxes"][0]]), atol=1e-5, rtol=0)
        assert not reply[0, 2:].any()  # the padding and the invalid box give zero rows


def test_variable_length_padding_would_widen_replies_and_change_border_crops(session, frames) -> None:
    """Why the config keeps `pad_variable_length_inputs` off. With it on, a request of two boxes merged with one of
    four gets a reply four boxes wide (the boxes padded with their first value give zero rows); and a frame
    padded to the size of a larger one (with its first pixel value) crops that padding for a box past its border."""
    narrow = {"frame_bytes": np.array([tf.io.encode_png(frames[1]).numpy()]), "boxes": BOXES[None, :2] + 1}
    wide = {"frame_bytes": np.array([tf.io.encode_png(frames[0]).numpy()]), "boxes": BOXES[None]}
    replies = split_like_tf_serving(
        session.run("embed_boxes", merged_like_tf_serving([narrow, wide], True))["embedding"], [narrow, wide]
    )
    alone = session.run("embed_boxes", narrow)["embedding"]
    assert alone.shape[:2] == (1, 2) and replies[0].shape[:2] == (1, 4)
    np.testing.assert_allclose(replies[0][:, :2], alone, atol=1e-5, rtol=0)
    assert not replies[0][:, 2:].any()

    small = {"frames": frames[1][None], "boxes": BOXES[None, :2]}
    large = {"frames": frames[0][None], "boxes": BOXES[None, :2]}
    replies = split_like_tf_serving(
        session.run("embed_boxes_pixels", merged_like_tf_serving([small, large], True))["embedding"], [small, large]
    )
    alone = session.run("embed_boxes_pixels", small)["embedding"]
    np.testing.assert_allclose(replies[0][0, 0], alone[0, 0], atol=1e-5, rtol=0)  # inside the small frame
    assert np.abs(replies[0][0, 1] - alone[0, 1]).max() > 1e-3  # past its border: the padding was cropped
    with pytest.raises(AssertionError, match="FailedPrecondition"):  # padding off: the batch cannot merge
        merged_like_tf_serving([small, large])


def test_a_box_shape_the_signature_refuses_is_invalid_argument_for_that_request(session, frames) -> None:
    """Fed as the C++ server feeds it. Python's `Session.run` compares feeds with the placeholders' shapes before
    running; TF Serving does not, so the feed goes to the session's C call directly, and the graph's own shape check
    is what refuses it."""
    signature = session.signatures["embed_boxes"]
    inputs = [
        session.graph.get_tensor_by_name(signature.inputs[name].name)._as_tf_output()
        for name in ("frame_bytes", "boxes")
    ]
    output = session.graph.get_tensor_by_name(signature.outputs["embedding"].name)._as_tf_output()

    def run(frame_bytes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return session.session._call_tf_sessionrun(None, dict(zip(inputs, (frame_bytes, boxes))), [output], [], None)[0]

    frame = np.array([tf.io.encode_png(frames[0]).numpy()], dtype=object)
    assert run(frame, BOXES[None]).shape[:2] == (1, 4)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Shape of tensor .* is not compatible with expected "
        r"shape \[\?,\?,4\]",
    ):
        run(frame, np.zeros((1, 3, 5), np.float32))
