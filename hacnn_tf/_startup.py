"""TensorFlow imported without its start-up notices, and the native libraries' own log lines kept off the terminal.

At import TensorFlow prints the oneDNN and CPU-feature INFO lines and absl's "All log messages before
absl::InitializeLog()" line, once per process, which bury a command's output: `import_tensorflow_quietly` drops
them (everything else written to stderr during the import, real warnings and errors, is passed through) and sets
`TF_CPP_MIN_LOG_LEVEL=2` unless it is set already, so that TensorFlow's and LiteRT's C++ INFO and WARNING lines
(converter statistics, "Reading SavedModel from ...") stay quiet in this process and in the processes it starts;
errors still show. `native_log_environment` is the environment of a child process under the same rule.

What the native code prints without going through that log level (the quantiser's settings line, LiteRT's
"Created TensorFlow Lite XNNPACK delegate" notice) is dropped by `quiet_native_output` around the calls that print
it, and `without_native_noise` drops the same lines from a child process's captured stderr before it is shown.

`HACNN_TF_SHOW_TF_STARTUP=1`, or `--verbose` on a hacnn-tf command line, keeps all of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping

SHOW_NATIVE_LOGS_ENV = "HACNN_TF_SHOW_TF_STARTUP"
QUIET_TF_CPP_MIN_LOG_LEVEL = "2"  # INFO and WARNING hidden, ERROR and FATAL shown
STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$"
)
# Lines the native libraries print as they work, which say nothing a user acts on: absl/TSL INFO and WARNING log
# lines (`I0000 00:00:1796641594.284622    7828 reader.cc:83] Reading SavedModel from: ...`, the converter's
# "Ignored output_format"), the quantiser's settings line, LiteRT's delegate notice.
NATIVE_NOISE = re.compile(
    r"^([IW]\d{4} [\d:. ]+\d+ [\w./+-]+:\d+\] .*"
    r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$"
)
# The programs whose `--verbose` shows the native logs: the console scripts and the repository's command modules.
_COMMAND_PACKAGES = ("hacnn_tf", "training", "export")


def _verbose_command_line() -> bool:
    """True for a hacnn-tf command run with `--verbose`: known before its arguments are parsed, as TensorFlow is
    imported (with the package) before they are. The command is a console script (`hacnn-tf`,
    `hacnn-convert-torchreid`) or a module of the command packages run with `python -m` (while `-m` imports the
    module's packages `sys.argv[0]` is `-m`, so the interpreter's own command line tells which module)."""
    if "--verbose" not in sys.argv[1:]:
        return False
    if sys.argv and os.path.basename(sys.argv[0]).startswith("hacnn-"):
        return True
    command = getattr(sys, "orig_argv", [])
    module = command[command.index("-m") + 1] if "-m" in command[:-1] else ""
    return module.split(".")[0] in _COMMAND_PACKAGES


def native_logs_shown() -> bool:
    """Whether the native libraries' log lines are to be shown (`HACNN_TF_SHOW_TF_STARTUP=1` or `--verbose`)."""
    return os.environ.get(SHOW_NATIVE_LOGS_ENV) == "1" or _verbose_command_line()


def native_log_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (default `os.environ`) for a child process: with `TF_CPP_MIN_LOG_LEVEL=2` unless the logs are
    shown (then as given) or the variable is set already."""
    environment = dict(os.environ if environ is None else environ)
    if not native_logs_shown():
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)
    return environment


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with `quiet_native_output`, after setting `TF_CPP_MIN_LOG_LEVEL=2` unless it is set
    (see the module docstring); nothing to do when it is imported already or the logs are shown."""
    if "tensorflow" in sys.modules or native_logs_shown():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)
    with quiet_native_output():
        import tensorflow  # noqa: F401


def without_native_noise(text: str) -> str:
    """`text` (a captured stderr) without the lines of `STARTUP_NOISE` and `NATIVE_NOISE`, unless they are shown."""
    if native_logs_shown():
        return text
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not (STARTUP_NOISE.match(line.rstrip("\n")) or NATIVE_NOISE.match(line.rstrip("\n")))
    )


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Within the block, what is written to the process's stderr file descriptor (by native code; Python's
    `sys.stderr` too, when it is that descriptor) is held in a temporary file; after it, the lines that are not
    native noise (`without_native_noise`) are written out. For short calls into native libraries that print as
    they work (TensorFlow's import, TFLite quantisation, LiteRT interpreters). Does nothing when the logs are
    shown or stderr is not a real file (embedded interpreters, captured streams)."""
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = None
    if native_logs_shown() or stderr_fd is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), stderr_fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            captured.seek(0)
            kept = without_native_noise(captured.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
