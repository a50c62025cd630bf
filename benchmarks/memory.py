"""Peak resident memory of one contender's batch-64 inference, measured alone in this process.

`python -m benchmarks.memory {torchreid,keras,saved_model} [SAVED_MODEL_DIR]` prints one JSON line:
`{"contender", "baseline_mib" (after imports and model build), "peak_mib" (high-water mark after inference)}`.
"""

from __future__ import annotations

import json
import sys

BATCH = 64


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    contender = argv[0]
    from benchmarks.models import images, pixels

    if contender == "torchreid":
        import torch

        from hacnn_tf.convert.reference import torchreid_hacnn

        model = torchreid_hacnn()
        batch = torch.from_numpy(images(BATCH).transpose(0, 3, 1, 2).copy())

        def run():
            with torch.no_grad():
                model(batch)
    elif contender == "keras":
        import tensorflow as tf

        from hacnn_tf.model import HACNN

        model = HACNN(751)
        embed = tf.function(lambda x: model(x, training=False)["embedding"], autograph=False)
        batch = images(BATCH)

        def run():
            embed(batch).numpy()
    elif contender == "saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(argv[1]).signatures["embed_images"]
        batch = tf.constant(pixels(BATCH))

        def run():
            signature(images=batch)["embedding"].numpy()
    else:
        raise SystemExit(f"unknown contender {contender!r}; expected torchreid, keras or saved_model")
    from hacnn_tf.evaluation.resources import status_mib

    baseline = status_mib("VmRSS")
    for _ in range(3):
        run()
    peak = status_mib("VmHWM")
    print(json.dumps({"contender": contender, "baseline_mib": baseline, "peak_mib": peak}))


if __name__ == "__main__":
    main()
