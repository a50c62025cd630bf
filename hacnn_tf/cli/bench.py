"""`hacnn-tf bench`: this project against torchreid on this machine (inference, TFLite, training, evaluation,
memory), in one interleaved run; prints a Markdown table and writes CSV. Needs a source checkout's `benchmarks/`
package and the `bench` extra (torch 2.13.0, torchreid 0.2.5)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options of the benchmark (see --help after bench)")


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.errors import MissingExtraError

    try:
        from benchmarks.run import main as bench_main
    except ImportError as error:
        raise MissingExtraError(
            "hacnn-tf bench runs the benchmarks/ package of a source checkout, from its root, "
            f"with the bench extra installed (pip install -e '.[bench]'): {error}"
        ) from None
    bench_main(args.args)
