"""`write_demo_figures` (the figures job): the figure set of a model on a data set."""

import numpy as np
import pandas as pd
from conftest import TINY_MODEL
from PIL import Image

from hacnn_tf import HACNN
from hacnn_tf.jobs import figures as report
from hacnn_tf.jobs.figures import attention_examples, write_demo_figures


def test_demo_figures_are_written_with_their_sizes(tmp_path, tiny_synthetic, monkeypatch):
    model = HACNN(None, **TINY_MODEL)
    (tmp_path / "train").mkdir()
    pd.DataFrame(
        {
            "epoch": [0, 1],
            "loss": [3.0, 2.0],
            "learning_rate": [1e-3, 1e-3],
            "val_mAP": [np.nan, 0.2],
            "val_rank1": [np.nan, 0.3],
        }
    ).to_csv(tmp_path / "train" / "training_log.csv", index=False)
    cache = {}
    distances = report.query_gallery_distances

    def cached_distances(*args, **kwargs):  # the second call below reuses the first's: same model, same data
        if "distmat" not in cache:
            cache["distmat"] = distances(*args, **kwargs)
        return cache["distmat"]

    monkeypatch.setattr(report, "query_gallery_distances", cached_distances)
    paths = write_demo_figures(model, tiny_synthetic, tmp_path)
    assert cache["distmat"].shape == (len(tiny_synthetic.query), len(tiny_synthetic.gallery))
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "figures/attention.png",
        "figures/ranked_lists.png",
        "figures/cmc.png",
        "figures/training_curves.png",
    ]
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    # attention: 8 rows of 1.2 x 2.4 in panels + title + box legend; ranks: 5 rows of 11 0.9 x (1.8 + 0.5) in
    # panels; 100 dpi.
    assert sizes == [(480, 1980), (990, 1150), (720, 540), (1500, 400)]

    # Without a training log the curves are left out.
    (tmp_path / "train" / "training_log.csv").unlink()
    assert [p.name for p in write_demo_figures(model, tiny_synthetic, tmp_path)] == [
        "attention.png",
        "ranked_lists.png",
        "cmc.png",
    ]


def test_attention_examples_take_one_image_per_identity_first(tiny_synthetic):
    examples = attention_examples(tiny_synthetic.query, 8)
    identities = tiny_synthetic.query["pid"].nunique()
    assert len(examples) == 8 and examples["pid"].iloc[:identities].is_unique
    assert examples.index.is_unique
