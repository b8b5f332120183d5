"""`ccas-bot bench match` prints its figures; the figures themselves are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_bench_match_prints_json_figures():
    result = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "match", "--cases", "1500",
                             "--messages", "30", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=REPOSITORY)

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["cases"] == 1500
    assert {"p50_ms", "p99_ms", "p50_ms_1k", "ratio_p50", "rss_mb"} <= set(figures)
    assert figures["p99_ms"] >= figures["p50_ms"] > 0
    # Messages of all three kinds were matched: linked, new and left to a person.
    assert {"score", "none", "ambiguous"} <= set(figures["outcomes"])
    assert figures["wrong_links"] == 0


def test_bench_match_rejects_zero_cases():
    result = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "match", "--cases", "0"],
                            capture_output=True, text=True, timeout=120, cwd=REPOSITORY)

    assert result.returncode == 2
    assert "--cases and --messages must be at least 1" in result.stderr
