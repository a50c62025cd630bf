"""Batch-1 latency of the float32 SavedModel under TF Serving's loader, for each server setting that can change it.

`python -m benchmarks.serving_latency --out benchmarks/results` exports the paper-sized model (random weights;
`--saved-model DIR` reads an `export_saved_model` version folder instead) and times its `embed_images` signature on
one image in a TF1 session, as `tensorflow_model_server` and `saved_model_cli run` load it
(`benchmarks.profile_ops.session_profile`), under each of `SETTINGS`:

- the inter-op thread pool: one thread (`--tensorflow_inter_op_parallelism=1`, the nodes run one after another) or
  TensorFlow's choice (the server's default, 0: as many threads as cores, so independent branches such as the
  Inception streams and the local stream run side by side);
- oneDNN's fused kernels forced on (`TF_ENABLE_ONEDNN_OPTS=1`) or left at TensorFlow's default for the CPU (on only
  where the CPU has AVX512-VNNI, AVX512-BF16 or AMX);
- XLA auto-clustering (`TF_XLA_FLAGS=--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit`, the session-level XLA that the
  server's environment can turn on without re-exporting the model).

Environment variables are read when TensorFlow starts, so every setting runs in its own child process; the settings
alternate round by round (`--rounds`) and each row is the median over its rounds of the child's median call. Each
child also reports the nodes the executor ran and the ops' own time in one traced call (the rest is the executor's
dispatch). Prints the table with the machine and its CPU flags, writes `serving_latency.csv` and `.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence

import pandas as pd

from benchmarks.harness import machine_description

XLA_AUTO_JIT = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way to run the server: its inter-op threads (0: TensorFlow's choice) and environment."""

    name: str
    inter_op_threads: int
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    server: str = ""  # what sets it on tensorflow_model_server


SETTINGS = (
    Setting("inter-op 1", 1, {}, "--tensorflow_inter_op_parallelism=1"),
    Setting("inter-op auto (server default)", 0, {}, "(no flag)"),
    Setting("oneDNN on, inter-op 1", 1, {"TF_ENABLE_ONEDNN_OPTS": "1"}, "env TF_ENABLE_ONEDNN_OPTS=1"),
    Setting("oneDNN on, inter-op auto", 0, {"TF_ENABLE_ONEDNN_OPTS": "1"}, "env TF_ENABLE_ONEDNN_OPTS=1"),
    Setting("XLA auto-jit, inter-op 1", 1, {"TF_XLA_FLAGS": XLA_AUTO_JIT}, f"env TF_XLA_FLAGS='{XLA_AUTO_JIT}'"),
    Setting("XLA auto-jit, inter-op auto", 0, {"TF_XLA_FLAGS": XLA_AUTO_JIT}, f"env TF_XLA_FLAGS='{XLA_AUTO_JIT}'"),
)


def child_command(saved_model: str | os.PathLike, setting: Setting, threads: int, repeats: int) -> list[str]:
    """The command line of one timed child process for `setting`."""
    return [
        sys.executable,
        "-m",
        "benchmarks.serving_latency",
        "--child",
        "--saved-model",
        str(saved_model),
        "--threads",
        str(threads),
        "--inter-op-threads",
        str(setting.inter_op_threads),
        "--repeats",
        str(repeats),
    ]


def child_environment(setting: Setting, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (default `os.environ`) with the variables every setting controls removed, then `setting`'s added,
    so that a variable set in the caller's shell does not leak into the settings that leave it at its default."""
    environment = {
        key: value
        for key, value in (os.environ if environ is None else environ).items()
        if key not in ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS")
    }
    return {**environment, "TF_CPP_MIN_LOG_LEVEL": "2", **setting.environment}


def measure(
    saved_model: str | os.PathLike,
    settings: Sequence[Setting] = SETTINGS,
    threads: int = 2,
    rounds: int = 3,
    repeats: int = 50,
) -> pd.DataFrame:
    """One row per child run: `setting`, `round`, `ms` (median of `repeats` single-image calls), `nodes`, `op_ms`."""
    rows = []
    for round_ in range(rounds):
        for setting in settings:
            result = subprocess.run(
                child_command(saved_model, setting, threads, repeats),
                env=child_environment(setting),
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode != 0:
                raise RuntimeError(f"{setting.name}: the child process failed:\n{result.stderr[-3000:]}")
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append({"setting": setting.name, "round": round_, **measured})
    return pd.DataFrame(rows)


def summary(runs: pd.DataFrame, settings: Sequence[Setting] = SETTINGS) -> pd.DataFrame:
    """One row per setting, in `settings` order: the median `ms` over its rounds, its min and max, `nodes`,
    `op_ms`, the ratio to the first setting, and the server flag or environment that sets it."""
    grouped = runs.groupby("setting", sort=False)
    table = pd.DataFrame(
        {
            "ms": grouped["ms"].median(),
            "min_ms": grouped["ms"].min(),
            "max_ms": grouped["ms"].max(),
            "nodes": grouped["nodes"].median(),
            "op_ms": grouped["op_ms"].median(),
        }
    )
    table = table.reindex([setting.name for setting in settings if setting.name in table.index])
    table["vs_first"] = table["ms"] / table["ms"].iloc[0]
    table["server"] = [next(s.server for s in settings if s.name == name) for name in table.index]
    table.index.name = "setting"
    return table


def _child(args: argparse.Namespace) -> None:
    from benchmarks.profile_ops import session_profile

    profile = session_profile(
        args.saved_model, batch=1, threads=args.threads, inter_op_threads=args.inter_op_threads, repeats=args.repeats
    )
    print(json.dumps({"ms": profile["wall_ms"], "nodes": profile["nodes"], "op_ms": profile["op_ms"]}))


def main(argv: list[str] | None = None) -> pd.DataFrame | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saved-model", help="an export_saved_model version folder (default: export one)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (--tensorflow_intra_op_parallelism)")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per setting, alternating")
    parser.add_argument("--repeats", type=int, default=50, help="timed single-image calls per child (median)")
    parser.add_argument("--out", help="folder for serving_latency.csv and .md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inter-op-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return None
    print(f"machine: {machine_description()}")
    with tempfile.TemporaryDirectory() as scratch:
        saved_model = args.saved_model
        if saved_model is None:
            from benchmarks.models import NUM_CLASSES
            from hacnn_tf.export.saved_model import export_saved_model
            from hacnn_tf.model import HACNN

            saved_model = export_saved_model(HACNN(NUM_CLASSES), scratch, check=False)
        table = summary(measure(saved_model, SETTINGS, args.threads, args.rounds, args.repeats))
    print(
        f"\nfloat32 SavedModel, embed_images, batch 1, TF1 session loader, {args.threads} intra-op threads "
        f"(median of {args.rounds} child processes x {args.repeats} calls):"
    )
    print(table.to_string(float_format="{:.2f}".format))
    if args.out:
        from hacnn_tf.evaluation.metrics import write_results

        write_results(table, pathlib.Path(args.out) / "serving_latency", float_format="{:.3f}")
    return table


if __name__ == "__main__":
    main()
