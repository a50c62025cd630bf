"""Timing machinery of the benchmark suite: interleaved repeated runs, the machine's matmul peak, peak memory."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np


@dataclasses.dataclass
class Contender:
    """One thing to time: `run()` does one unit of work of `items` images (or 1 for non-image work)."""

    name: str
    run: Callable[[], object]
    items: int = 1


def interleave(
    contenders: Sequence[Contender], repeats: int = 7, warmup: int = 2, pause: float = 0.1
) -> dict[str, np.ndarray]:
    """Seconds per call of each contender, `repeats` rounds in which every contender runs once in turn.

    Alternating the contenders spreads slow phases of a shared machine over all of them, so their ratios hold even
    when the absolute times drift. `pause` lets the other runtime's worker threads stop spinning before a timed
    call (OpenMP and Eigen both spin-wait after work)."""
    for contender in contenders:
        for _ in range(warmup):
            contender.run()
    times = {contender.name: [] for contender in contenders}
    for _ in range(repeats):
        for contender in contenders:
            time.sleep(pause)
            start = time.perf_counter()
            contender.run()
            times[contender.name].append(time.perf_counter() - start)
    return {name: np.asarray(values) for name, values in times.items()}


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 `size x size` matrix-multiply rate (GFLOP/s) TensorFlow reaches on this machine, all threads."""
    import tensorflow as tf

    a = tf.random.normal((size, size), seed=0)
    b = tf.random.normal((size, size), seed=1)
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = min(_seconds(lambda: matmul(a, b).numpy()) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_of(module: str, *args: str, timeout: float = 900.0) -> dict:
    """Runs `python -m module *args` in a fresh process; returns the JSON object its last stdout line holds.

    Each memory measurement runs alone in its own process: `ru_maxrss` is a high-water mark of the whole process."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if result.returncode:
        raise RuntimeError(f"`python -m {module} {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


CPU_FLAGS = {
    "AVX512-BF16": ("avx512_bf16",),
    "AMX": ("amx_bf16", "amx_int8", "amx_tile"),
    "AVX512-VNNI": ("avx512_vnni",),
    "AVX-VNNI": ("avx_vnni",),
}


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """`{feature: present}` of `CPU_FLAGS` from /proc/cpuinfo's first `flags` line (AMX: any of its flags)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    flags = next(
        (set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines() if line.startswith("flags")), set()
    )
    return {feature: any(flag in flags for flag in names) for feature, names in CPU_FLAGS.items()}


def machine_description() -> str:
    """CPU model, logical cores, memory and `cpu_flags`, e.g. `AMD EPYC, 2 cores, 23 GiB (AVX512-BF16 yes, AMX no,
    AVX512-VNNI yes, AVX-VNNI no)`."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    flags = ", ".join(f"{feature} {'yes' if present else 'no'}" for feature, present in cpu_flags().items())
    return f"{model}, {os.cpu_count()} cores{memory} ({flags})"


def summarize(times: Mapping[str, np.ndarray], items: Mapping[str, int]) -> dict[str, dict[str, float]]:
    """Median seconds per call, the spread (p10-p90 of seconds) and images per second, per contender."""
    return {
        name: {
            "median_s": float(np.median(t)),
            "p10_s": float(np.percentile(t, 10)),
            "p90_s": float(np.percentile(t, 90)),
            "images_per_s": items[name] / float(np.median(t)),
        }
        for name, t in times.items()
    }
