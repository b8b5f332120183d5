"""`ccas-bot bench`: the group, and the latency benchmark against its own servers."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from bot.bench_latency import config_toml, percentile


def test_percentile_nearest_rank():
    values = [float(number) for number in range(1, 21)]

    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([], 95) is None


def test_config_toml_reads_back():
    data = {"bot": {"poll_interval_seconds": 1, "log_level": "INFO"},
            "mailbox": {"backend": "imap", "imap": {"idle": True, "folder": 'Quote "and" slash \\'}},
            "council": {"duty_coordinators": ["duty@testshire.gov.example"]}}

    assert tomllib.loads(config_toml(data)) == data


def test_bench_group_lists_latency():
    result = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "--help"],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0
    assert "latency" in result.stdout


def test_bench_latency_json_reports_both_modes(dovecot_binary):
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "bench", "latency", "--messages", "2", "--gap", "0.3", "--json"],
        capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert [entry["mode"] for entry in figures] == ["poll", "idle"]
    for entry in figures:
        assert entry["messages"] == 2
        assert entry["acknowledged"] == 2
        assert 0 < entry["p50_s"] <= entry["p95_s"] <= entry["max_s"]
