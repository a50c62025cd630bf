"""Export a checkpoint to a versioned SavedModel for TF Serving (self-checked in a fresh process):
`hacnn-tf export CHECKPOINT EXPORT_DIR` (see `hacnn-tf export --help`).

Example: python -m export.saved_model runs/market/best.keras exported --version 1 --warmup-images runs/demo/data/query
"""

from hacnn_tf.cli import subcommand_main

if __name__ == "__main__":
    raise SystemExit(subcommand_main("export"))
