"""Data sets for person re-identification: readers for the public benchmarks, user folders / CSVs, and a
synthetic Market-1501-style set. Pure numpy / pandas / PIL / h5py: nothing here imports TensorFlow."""

from hacnn_tf.data.datasets import DATASET_NAMES, ReIDDataset, load_dataset, verify_images

__all__ = ["DATASET_NAMES", "ReIDDataset", "load_dataset", "verify_images", "make_synthetic_dataset"]


def __getattr__(name: str) -> object:
    # Imported lazily so that `python -m hacnn_tf.data.synthetic` does not find its module already imported.
    if name == "make_synthetic_dataset":
        from hacnn_tf.data.synthetic import make_synthetic_dataset

        return make_synthetic_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
