"""`benchmarks.serving_latency`: the per-setting reduction (worked out by hand), the children's environment, and
one child process against the in-process profile of the same SavedModel."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from benchmarks.profile_ops import session_profile
from benchmarks.serving_latency import SETTINGS, Setting, child_command, child_environment, summary

FIRST, SECOND = Setting("one", 1, {}, "--flag=1"), Setting("two", 0, {"TF_XLA_FLAGS": "x"}, "env")


def test_summary_takes_the_median_over_rounds_in_settings_order():
    runs = pd.DataFrame(
        [
            {"setting": "two", "round": 0, "ms": 6.0, "nodes": 10, "op_ms": 4.0},
            {"setting": "one", "round": 0, "ms": 10.0, "nodes": 20, "op_ms": 8.0},
            {"setting": "two", "round": 1, "ms": 4.0, "nodes": 10, "op_ms": 3.0},
            {"setting": "one", "round": 1, "ms": 12.0, "nodes": 20, "op_ms": 9.0},
            {"setting": "two", "round": 2, "ms": 5.0, "nodes": 10, "op_ms": 2.0},
            {"setting": "one", "round": 2, "ms": 8.0, "nodes": 20, "op_ms": 7.0},
        ]
    )
    table = summary(runs, (FIRST, SECOND))
    assert table.index.tolist() == ["one", "two"]
    assert table["ms"].tolist() == [10.0, 5.0] and table["min_ms"].tolist() == [8.0, 4.0]
    assert table["max_ms"].tolist() == [12.0, 6.0] and table["op_ms"].tolist() == [8.0, 3.0]
    assert table["vs_first"].tolist() == [1.0, 0.5] and table["server"].tolist() == ["--flag=1", "env"]


def test_each_child_gets_only_its_own_settings_variables():
    shell = {"PATH": "/bin", "TF_ENABLE_ONEDNN_OPTS": "0", "TF_XLA_FLAGS": "--old"}
    assert child_environment(FIRST, shell) == {"PATH": "/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert child_environment(SECOND, shell) == {"PATH": "/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_XLA_FLAGS": "x"}
    assert len({setting.name for setting in SETTINGS}) == len(SETTINGS)
    assert {setting.inter_op_threads for setting in SETTINGS} == {0, 1}


def test_a_child_reports_the_graph_it_ran(exported_saved_model):
    """The child's node count is the in-process profile's (the same graph under the same loader), and its ops' own
    time is part of its wall time."""
    setting = SETTINGS[0]
    result = subprocess.run(
        child_command(exported_saved_model, setting, threads=1, repeats=5),
        env=child_environment(setting),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    expected = session_profile(exported_saved_model, batch=1, threads=1, inter_op_threads=1, repeats=2)
    assert measured["nodes"] == expected["nodes"] > 50
    assert 0 < measured["op_ms"] and np.isfinite(measured["ms"]) and measured["ms"] > 0


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_every_setting_names_how_the_server_gets_it(setting):
    assert setting.server and (setting.inter_op_threads == 1) == ("inter-op 1" in setting.name)
