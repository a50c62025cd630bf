"""Time and peak resident memory of a piece of work in this process (Linux `/proc/self`), for evaluation reports."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["describe", "measure", "status_mib"]


def status_mib(field: str) -> float | None:
    """`VmRSS` (resident now) or `VmHWM` (its high-water mark) of this process in MiB; None where `/proc` has none.

    Not `getrusage().ru_maxrss`: Linux carries it over from the parent across fork + exec, so a child of a large
    process reports the parent's peak."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Resets this process' `VmHWM` to its current resident size (Linux >= 4.0); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def measure() -> Iterator[dict[str, float | None]]:
    """`with measure() as usage: ...` fills `usage` with `seconds` (wall clock), `baseline_mib` (resident memory when
    the block began) and `peak_mib`, the process' highest resident memory during the block: the block resets the
    process' `VmHWM` to start with (where the kernel refuses, `peak_since_start` is True and the peak is the
    process'). Anything else reading `VmHWM` afterwards sees the peak since that reset."""
    usage: dict[str, float | None] = {"baseline_mib": status_mib("VmRSS")}
    reset = _reset_peak()
    start = time.perf_counter()
    try:
        yield usage
    finally:
        usage["seconds"] = time.perf_counter() - start
        usage["peak_mib"] = status_mib("VmHWM")
        usage["peak_since_start"] = not reset


def describe(usage: dict[str, float | None]) -> str:
    """`12.3 s, peak resident memory 1.21 GiB` (the process' peak since it started where it could not be reset)."""
    peak = usage.get("peak_mib")
    memory = "peak memory unknown" if peak is None else f"peak resident memory {peak / 1024:.2f} GiB"
    if peak is not None and usage.get("peak_since_start"):
        memory += " (process peak)"
    return f"{usage['seconds']:.1f} s, {memory}"
