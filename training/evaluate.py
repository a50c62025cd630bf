"""Evaluate a checkpoint: `hacnn-tf evaluate` (see `hacnn-tf evaluate --help`)."""

from __future__ import annotations

from hacnn_tf.cli import subcommand_main


def main(argv: list[str] | None = None) -> int:
    return subcommand_main("evaluate", argv)


if __name__ == "__main__":
    raise SystemExit(main())
