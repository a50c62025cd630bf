"""Person crops cut from camera frames at detector boxes, as TF ops: the one definition of "crop a box" used by the
exported `embed_boxes` signatures and by `ReIDEmbedder`.

A box is the pixel rectangle `x1, y1, x2, y2` a detector emits (`x2`, `y2` exclusive, as in `frame[y1:y2, x1:x2]`;
fractional coordinates allowed). It is clipped to the frame, and its integer bounds are the smallest pixel rectangle
covering it: `floor(x1), floor(y1), ceil(x2), ceil(y2)`. That region is resized to the model's input size by
`resize_pixels`, the resize of `HACNNPreprocessor` (bilinear with antialiasing, on float32 pixels), and encoded frames
are decoded by its `decode_rgb`, so a box covering a frame gives that frame's training-pipeline pixels.

A box is invalid when a coordinate is not finite (NaN, infinity) or its clipped area is zero (`x2 <= x1`,
`y2 <= y1`, or wholly outside the frame). An invalid box gives a crop of zeros and `valid` false, never an error:
a tracker's batch goes on, and the embedding callers give it a row of zeros (cosine similarity 0 with every
embedding) without running the model on it. Padding a frame's boxes with `0, 0, 0, 0` therefore costs nothing.

The embedding functions (`embed_boxes`, `embed_frame_boxes`, `embed_encoded_frames`, graph code for the exported
signatures: call them in a `tf.function`) crop inside a loop over chunks of `CHUNK_SIZE` boxes, so memory does not
grow with the number of boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from hacnn_tf.data.hacnn_preprocessor import resize_pixels
from hacnn_tf.data.image_decoding import decode_rgb

# Boxes cropped and embedded together by `embed_boxes`: the peak memory of a call of any size is one such chunk's
# crops and model activations, and a CPU's throughput gains little past a batch of 64.
CHUNK_SIZE = 64


def box_bounds(boxes, frame_height, frame_width):
    """`boxes [M, 4]` pixel `x1, y1, x2, y2` in a `frame_height x frame_width` frame -> `(bounds, valid)`:
    `bounds [M, 4]` int32 `top, left, bottom, right` (clipped, floor/ceil; `0, 0, 1, 1` for an invalid box) and
    `valid [M]` bool."""
    boxes = tf.cast(boxes, tf.float32)
    finite = tf.reduce_all(tf.math.is_finite(boxes), axis=1)
    boxes = tf.where(finite[:, None], boxes, tf.zeros_like(boxes))
    height, width = tf.cast(frame_height, tf.float32), tf.cast(frame_width, tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, axis=1)
    x1, x2 = tf.clip_by_value(x1, 0.0, width), tf.clip_by_value(x2, 0.0, width)
    y1, y2 = tf.clip_by_value(y1, 0.0, height), tf.clip_by_value(y2, 0.0, height)
    valid = finite & (x2 > x1) & (y2 > y1)
    bounds = tf.cast(tf.stack([tf.floor(y1), tf.floor(x1), tf.math.ceil(y2), tf.math.ceil(x2)], axis=1), tf.int32)
    return tf.where(valid[:, None], bounds, tf.constant([[0, 0, 1, 1]], tf.int32)), valid


def crop_boxes(frames, boxes, box_frames, input_size: Sequence[int]):
    """Crops of `boxes` resized to `input_size`: `(crops (M, H, W, 3) float32 in 0..255, valid (M,) bool)`.

    `frames [N, FH, FW, 3]` uint8 or float RGB pixels 0..255, `boxes [M, 4]` pixel `x1, y1, x2, y2`, `box_frames
    [M]` int, the frame each box is in (an index outside `0..N-1` is an `InvalidArgument` error). Each crop equals
    `resize_pixels(frame[top:bottom, left:right], input_size)` (the preprocessor's resize) exactly; an invalid box
    (see the module docstring) gives zeros.
    """
    frames = tf.convert_to_tensor(frames)
    box_frames = tf.cast(box_frames, tf.int32)
    shape = tf.shape(frames)
    checks = [
        tf.debugging.assert_rank(frames, 4, message="frames must be [N, height, width, 3]"),
        tf.debugging.assert_positive(shape[1:3], message="frames must be at least 1 x 1 pixels"),
        tf.debugging.assert_equal(tf.shape(boxes)[1:], [4], message="boxes must be [M, 4]: x1, y1, x2, y2"),
        tf.debugging.assert_equal(
            tf.shape(box_frames), tf.shape(boxes)[:1], message="box_frames must be [M], one frame index per box"
        ),
        tf.debugging.assert_less(box_frames, shape[0], message="box_frames holds an index past the last frame"),
        tf.debugging.assert_non_negative(box_frames, message="box_frames holds a negative frame index"),
    ]
    with tf.control_dependencies(checks):
        bounds, valid = box_bounds(boxes, shape[1], shape[2])
    empty = tf.zeros((*input_size, 3), tf.float32)

    def crop(args):
        bound, index, ok = args

        def resized():
            return resize_pixels(frames[index, bound[0] : bound[2], bound[1] : bound[3]], input_size)

        return tf.cond(ok, resized, lambda: empty)

    crops = tf.map_fn(
        crop, (bounds, box_frames, valid), fn_output_signature=tf.TensorSpec((*input_size, 3), tf.float32)
    )
    return crops, valid


def embed_boxes(
    embed, frames, boxes, box_frames, input_size: Sequence[int], embedding_dim: int, chunk_size: int = CHUNK_SIZE
):
    """`(M, embedding_dim)` float32 embeddings of `crop_boxes(frames, boxes, box_frames, input_size)`, zeros for an
    invalid box, cut and embedded `chunk_size` boxes at a time: `embed` maps `(V, H, W, 3)` crops to `(V, D)`.

    One `tf.while_loop` iteration crops a chunk and embeds its valid crops (`embed_valid_crops`), and iterations
    run one after another (`parallel_iterations=1`), so at most one chunk of crops and one model call's activations
    are alive at a time whatever `M` is: memory grows with the result (`M x D` floats), not with the crops. The
    loop runs at least once, so no boxes give `(0, D)` from the model's empty call."""
    boxes = tf.cast(boxes, tf.float32)
    box_frames = tf.cast(box_frames, tf.int32)
    count = tf.shape(boxes)[0]
    chunks = tf.maximum((count + chunk_size - 1) // chunk_size, 1)

    def body(index, embeddings):
        start = index * chunk_size
        crops, valid = crop_boxes(
            frames, boxes[start : start + chunk_size], box_frames[start : start + chunk_size], input_size
        )
        return index + 1, embeddings.write(index, embed_valid_crops(embed, crops, valid))

    embeddings = tf.TensorArray(
        tf.float32, size=chunks, infer_shape=False, element_shape=tf.TensorShape([None, embedding_dim])
    )
    _, embeddings = tf.while_loop(
        lambda index, _: index < chunks, body, (tf.constant(0), embeddings), parallel_iterations=1
    )
    return tf.ensure_shape(embeddings.concat(), (None, embedding_dim))


def embed_frame_boxes(
    embed, frames, boxes, input_size: Sequence[int], embedding_dim: int, chunk_size: int = CHUNK_SIZE
):
    """`embed_boxes` for `B` boxes per frame: `frames [N, FH, FW, 3]`, `boxes [N, B, 4]` -> `[N, B, D]`, the `N x B`
    boxes cut and embedded `chunk_size` at a time across frames."""
    shape = tf.shape(boxes)
    check = tf.debugging.assert_equal(
        shape[0], tf.shape(frames)[0], message="boxes must be [N, B, 4]: one row of boxes per frame"
    )
    with tf.control_dependencies([check]):
        box_frames = tf.repeat(tf.range(shape[0]), shape[1])
    flat = embed_boxes(embed, frames, tf.reshape(boxes, (-1, 4)), box_frames, input_size, embedding_dim, chunk_size)
    return tf.reshape(flat, tf.concat([shape[:2], [embedding_dim]], 0))


def embed_encoded_frames(
    embed,
    frame_bytes,
    boxes,
    input_size: Sequence[int],
    embedding_dim: int,
    max_pixels: int | None = None,
    chunk_size: int = CHUNK_SIZE,
):
    """`embed_frame_boxes` for encoded frames `frame_bytes [N]` string (JPEG/PNG/BMP/GIF/WebP, each of any size) and
    `boxes [N, B, 4]` -> `[N, B, D]`: frame after frame (one decoded frame alive at a time, `parallel_iterations=1`),
    each decoded by `decode_rgb` (refused past `max_pixels` pixels by its header) and its boxes embedded `chunk_size`
    at a time (`embed_boxes`)."""
    check = tf.debugging.assert_equal(
        tf.shape(boxes)[0], tf.shape(frame_bytes)[0], message="boxes must be [N, B, 4]: one row of boxes per frame"
    )
    with tf.control_dependencies([check]):
        rows = tf.shape(frame_bytes)[0]
    boxes_per_frame = tf.shape(boxes)[1]

    def body(row, embeddings):
        frame_boxes = boxes[row]
        frame = decode_rgb(frame_bytes[row], max_pixels)[None]
        return row + 1, embeddings.write(
            row,
            embed_boxes(
                embed,
                frame,
                frame_boxes,
                tf.zeros(tf.shape(frame_boxes)[:1], tf.int32),
                input_size,
                embedding_dim,
                chunk_size,
            ),
        )

    embeddings = tf.TensorArray(tf.float32, size=rows, element_shape=tf.TensorShape([None, embedding_dim]))
    _, embeddings = tf.while_loop(lambda row, _: row < rows, body, (tf.constant(0), embeddings), parallel_iterations=1)
    # concat, not stack: a TensorArray of no rows concatenates to (0, D) (it cannot stack rows of an unknown B).
    return tf.reshape(embeddings.concat(), tf.stack([rows, boxes_per_frame, embedding_dim]))


def embed_valid_crops(embed, crops, valid):
    """`embed(crops[valid]) -> (V, D)` scattered to `(M, D)` rows, zeros for the invalid boxes (`valid [M]` false),
    which the model never sees."""
    kept = tf.where(valid)
    embedding = embed(tf.gather_nd(crops, kept))
    return tf.scatter_nd(
        kept, embedding, tf.stack([tf.shape(valid, out_type=tf.int64)[0], tf.shape(embedding, out_type=tf.int64)[1]])
    )
