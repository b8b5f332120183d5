"""`ccas-bot bench parse` on a tiny folder built here."""

from __future__ import annotations

import json

import mailfactory
from bot.cli import main


def test_bench_parse_prints_json(tmp_path, capsys):
    nested = tmp_path / "nested"
    nested.mkdir()
    (tmp_path / "referral.eml").write_bytes(mailfactory.referral().as_bytes())
    (nested / "away.eml").write_bytes(mailfactory.out_of_office().as_bytes())
    (tmp_path / "notes.txt").write_text("not a message", encoding="utf-8")

    status = main(["bench", "parse", str(tmp_path), "--json", "--rounds", "1"])

    figures = json.loads(capsys.readouterr().out)
    assert status == 0
    assert set(figures) == {"messages", "triage_per_s", "bare_parse_per_s", "ratio"}
    assert figures["messages"] == 2
    assert figures["triage_per_s"] > 0
    assert figures["bare_parse_per_s"] > 0
    # The ratio is taken before the two rates are rounded for printing.
    assert abs(figures["ratio"] - figures["triage_per_s"] / figures["bare_parse_per_s"]) < 0.01


def test_bench_parse_empty_folder(tmp_path, capsys):
    status = main(["bench", "parse", str(tmp_path)])

    assert status == 2
    assert "no .eml files" in capsys.readouterr().err
