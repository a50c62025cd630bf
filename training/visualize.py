"""Figures as PNG files: `hacnn-tf visualize {attention,ranks,curves}` (see `hacnn-tf visualize --help`)."""

from hacnn_tf.cli import subcommand_main


def main(argv: list[str] | None = None) -> int:
    return subcommand_main("visualize", argv)


if __name__ == "__main__":
    raise SystemExit(main())
