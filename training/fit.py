"""Train HA-CNN with model.fit: `hacnn-tf fit CONFIG [--set section.field=value ...] [--overwrite]` (see
`hacnn-tf fit --help`; CONFIG is a packaged config name or a file).

Example: python -m training.fit training/configs/market1501_paper_softmax.yaml --set data.root=/data/reid
"""

from hacnn_tf.cli import subcommand_main


def main(argv: list[str] | None = None) -> int:
    return subcommand_main("fit", argv)


if __name__ == "__main__":
    raise SystemExit(main())
