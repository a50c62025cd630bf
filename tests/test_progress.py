"""`hacnn_tf.progress.Progress`: a bar redrawn in place on a TTY, plain periodic lines elsewhere, nothing when off."""

import io

import pytest

from hacnn_tf import progress as progress_module
from hacnn_tf.progress import Progress, format_seconds


class Clock:
    """A `time.perf_counter` that moves only when told."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    monkeypatch.delenv(progress_module.PROGRESS_ENV, raising=False)
    return clock


def test_format_seconds():
    assert [format_seconds(s) for s in (0.4, 42, 185, 3720)] == ["0 s", "42 s", "3 min 05 s", "1 h 02 min"]


def test_plain_lines_every_interval_with_eta_and_a_last_line(clock):
    stream = io.StringIO()
    with Progress("embedding 100 images", total=100, unit="images", stream=stream, interval=10) as shown:
        for _ in range(10):
            clock.now += 3  # 10 images every 3 s
            shown.advance(10)
    lines = stream.getvalue().splitlines()
    # Lines at 12 s (40 images: 60 left at 0.3 s each: 18 s), 24 s and, closing, the total.
    assert lines == [
        "embedding 100 images: 40/100 images (40%), 12 s, ETA 18 s",
        "embedding 100 images: 80/100 images (80%), 24 s, ETA 6 s",
        "embedding 100 images: 100/100 images (100%), 30 s (done)",
    ]


def test_a_short_step_prints_nothing_off_a_terminal(clock):
    stream = io.StringIO()
    with Progress("embedding", total=5, stream=stream) as shown:
        clock.now += 1
        shown.advance(5)
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_bar_redrawn_in_place(clock):
    stream = Terminal()
    with Progress("training", total=4, unit="steps", stream=stream) as shown:
        for step in range(4):
            clock.now += 1
            shown.advance(1, postfix=f"loss {4 - step:.1f}")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, rewritten with carriage returns
    redraws = [part.removesuffix("\x1b[K") for part in text.rstrip("\n").split("\r")[1:]]
    assert redraws[0] == "training [######..................] 1/4 steps (25%), 1 s, ETA 3 s, loss 4.0"
    assert redraws[-1] == "training [########################] 4/4 steps (100%), 4 s, loss 1.0"


def test_off_by_environment_or_argument(clock, monkeypatch):
    stream = Terminal()
    Progress("x", total=1, stream=stream, enabled=False).advance(1)
    monkeypatch.setenv(progress_module.PROGRESS_ENV, "0")
    with Progress("x", total=1, stream=stream) as shown:
        clock.now += 60
        shown.advance(1)
    assert stream.getvalue() == ""


def test_unknown_total_counts_without_eta(clock):
    stream = io.StringIO()
    shown = Progress("reading", stream=stream, interval=1)
    clock.now += 2
    shown.advance(7)
    assert stream.getvalue() == "reading: 7, 2 s\n"
