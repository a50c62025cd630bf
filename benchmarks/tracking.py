"""Embedding the detector boxes of a camera frame: in the graph (the SavedModel's `embed_boxes` on the JPEG frame,
`embed_boxes_pixels` on its uint8 pixels) against cutting the crops in Python (PIL `crop` + `resize(BILINEAR)`, as
torchreid's transforms resize) and calling `embed_images`.

`python -m benchmarks.tracking --out benchmarks/results [--threads 2] [--repeats 5]` exports the paper-sized model
(torchreid's weights, `benchmarks.models.reference_and_port`), times one 1920 x 1080 frame with 8, 32 and 64 boxes,
the contenders interleaved, and writes `tracking.csv` and `tracking.md`: boxes embedded per second and the
in-graph/Python speed ratio.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import tempfile

import numpy as np
import pandas as pd

from benchmarks.harness import Contender, interleave, machine_description, summarize
from benchmarks.models import reference_and_port

FRAME_SIZE = (1080, 1920)
BOX_COUNTS = (8, 32, 64)


def camera_frame(seed: int = 0) -> np.ndarray:
    """A smooth `(1080, 1920, 3)` uint8 frame (noise upsampled: JPEG-compressible like camera footage)."""
    import tensorflow as tf

    coarse = np.random.default_rng(seed).uniform(0, 255, (68, 120, 3)).astype(np.float32)
    return tf.cast(tf.clip_by_value(tf.image.resize(coarse, FRAME_SIZE, "bicubic"), 0, 255), tf.uint8).numpy()


def person_boxes(count: int, seed: int = 0) -> np.ndarray:
    """`count` person-shaped boxes (height 2-3 x width, 60-400 px tall) inside the frame, pixel `x1, y1, x2, y2`."""
    rng = np.random.default_rng(seed)
    heights = rng.uniform(60, 400, count)
    widths = heights / rng.uniform(2, 3, count)
    x1 = rng.uniform(0, FRAME_SIZE[1] - widths)
    y1 = rng.uniform(0, FRAME_SIZE[0] - heights)
    return np.stack([x1, y1, x1 + widths, y1 + heights], axis=1).astype(np.float32)


def python_crops(frame, boxes: np.ndarray, input_size) -> np.ndarray:
    """Crops cut in Python: PIL `crop` at the floor/ceil pixel bounds and `resize(BILINEAR)` to `input_size`."""
    from PIL import Image

    crops = []
    for x1, y1, x2, y2 in boxes:
        region = frame.crop((int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))))
        crops.append(np.asarray(region.resize(input_size[::-1], Image.BILINEAR), np.float32))
    return np.stack(crops)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results", help="folder for tracking.csv and tracking.md")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow's intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (medians reported)")
    args = parser.parse_args(argv)

    import tensorflow as tf
    from PIL import Image

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from hacnn_tf.evaluation.metrics import write_results
    from hacnn_tf.export import export_saved_model

    _, model = reference_and_port(seed=0)
    frame = camera_frame()
    jpeg = tf.io.encode_jpeg(frame, quality=90).numpy()
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        loaded = tf.saved_model.load(str(export_saved_model(model, scratch, "hacnn", 1, check=False)))
        boxes_bytes, boxes_pixels = loaded.signatures["embed_boxes"], loaded.signatures["embed_boxes_pixels"]
        embed_images = loaded.signatures["embed_images"]

        def python_path(boxes):
            image = Image.open(io.BytesIO(jpeg))
            image.load()
            return embed_images(images=tf.constant(python_crops(image, boxes, model.input_size)))["embedding"].numpy()

        for count in BOX_COUNTS:
            boxes = person_boxes(count, seed=count)
            contenders = [
                Contender(
                    "embed_boxes (JPEG frame)",
                    lambda b=boxes: boxes_bytes(frame_bytes=tf.constant([jpeg]), boxes=tf.constant(b[None]))[
                        "embedding"
                    ].numpy(),
                    count,
                ),
                Contender(
                    "embed_boxes_pixels (uint8 frame)",
                    lambda b=boxes: boxes_pixels(frames=tf.constant(frame[None]), boxes=tf.constant(b[None]))[
                        "embedding"
                    ].numpy(),
                    count,
                ),
                Contender("PIL crops + embed_images (JPEG frame)", lambda b=boxes: python_path(b), count),
            ]
            times = interleave(contenders, repeats=args.repeats, warmup=1)
            for name, row in summarize(times, {c.name: c.items for c in contenders}).items():
                rows[(count, name)] = {
                    "boxes": count,
                    "contender": name,
                    "median_s": row["median_s"],
                    "p10_s": row["p10_s"],
                    "p90_s": row["p90_s"],
                    "embeddings_per_s": row["images_per_s"],
                }
    table = pd.DataFrame(rows.values()).set_index(["boxes", "contender"])
    python = table.xs("PIL crops + embed_images (JPEG frame)", level="contender")["median_s"]
    table["speedup_vs_python"] = [python[count] / seconds for (count, _), seconds in table["median_s"].items()]
    print(
        f"Machine: {machine_description()}; {args.threads} TensorFlow threads; one {FRAME_SIZE[1]} x "
        f"{FRAME_SIZE[0]} frame, paper-sized HA-CNN ({model.input_size[0]} x {model.input_size[1]})."
    )
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    write_results(table, pathlib.Path(args.out) / "tracking", float_format="{:.4g}")
    return table


if __name__ == "__main__":
    main()
