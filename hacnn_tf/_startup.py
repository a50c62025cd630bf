"""TensorFlow imported without its start-up notices: the oneDNN and CPU-feature INFO lines and absl's "All log
messages before absl::InitializeLog()" line, which every process prints once and which bury a command's output.
Everything else written to stderr during the import (real warnings, errors) is passed through.
`HACNN_TF_SHOW_TF_STARTUP=1` keeps all of it."""

from __future__ import annotations

import os
import re
import sys
import tempfile

STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$")


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("HACNN_TF_SHOW_TF_STARTUP") == "1":
        return
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded interpreters): nothing to filter
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), stderr_fd)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if not STARTUP_NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
