"""Data sets for person re-identification: readers for the public benchmarks and user folders / CSVs
(`load_dataset`), the synthetic Market-1501-style set (`hacnn_tf.data.synthetic.generate`) and the tf.data input
pipelines (`hacnn_tf.data.pipeline`). The readers and the generator are numpy / pandas / PIL / h5py; verifying the
images at load time decodes them with the pipeline's TensorFlow decoder."""

from hacnn_tf.data.datasets import DATASET_NAMES, ReIDDataset, load_dataset, verify_images

__all__ = ["DATASET_NAMES", "ReIDDataset", "load_dataset", "verify_images"]
