"""`ccas-bot eval` on a corpus built here and, when present, on the shared corpora."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mailfactory
from bot.evaluate import load_corpus, score_kinds, score_labelled, triage_corpus

REPOSITORY = Path(__file__).resolve().parents[1]


def run_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "eval", *args],
                          capture_output=True, text=True, timeout=600, cwd=REPOSITORY)


def make_labelled_corpus(root: Path) -> Path:
    emails = root / "emails"
    register = root / "register"
    emails.mkdir(parents=True)
    register.mkdir()
    (register / "directory.toml").write_text(
        'la_name = "Testshire County Council"\nccas_inbox = "ccas@testshire.gov.example"\n'
        'send_inbox = "send@testshire.gov.example"\n'
        '[trusted_domains]\nhealth = ["testhealth.nhs.example"]\nla = ["testshire.gov.example"]\n',
        encoding="utf-8")
    (register / "schools.csv").write_text(
        "URN,LAESTAB,EstablishmentName,TypeOfEstablishment,Postcode,Domain\n"
        "990001,8889001,Brambleway Primary School,Community school,TS1 1AA,brambleway.sch.example\n",
        encoding="utf-8")
    (register / "cases.csv").write_text(
        "case_id,first_name,last_name,dob,upn,nhs_number,school_urn,status,ehcp,opened,last_reviewed,lead_email\n",
        encoding="utf-8")
    (emails / "001-referral.eml").write_bytes(mailfactory.referral().as_bytes())
    (emails / "001-referral.json").write_text(json.dumps({
        "category": "support_request", "urgent": False,
        "child": {"first_name": "Poppy", "last_name": "Larkspur", "dob": "2013-02-14"},
        "case": "new", "expected": {"acknowledge": True, "forward_to_send": False,
                                    "agenda": "new_referrals", "needs_review": False}}), encoding="utf-8")
    (emails / "002-oof.eml").write_bytes(mailfactory.out_of_office().as_bytes())
    (emails / "002-oof.json").write_text(json.dumps({
        "category": "auto_reply", "urgent": False, "case": "none",
        "expected": {"acknowledge": False, "forward_to_send": False, "agenda": "none",
                     "needs_review": False}}), encoding="utf-8")
    return root


def test_eval_scores_own_labelled_corpus(tmp_path):
    corpus = make_labelled_corpus(tmp_path / "corpus")
    predictions = tmp_path / "predictions.jsonl"

    result = run_eval(str(corpus), "--predictions", str(predictions), "--json")

    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["messages"] == 2
    assert scores["crashed"] == 0
    assert scores["accuracy"]["category"] == 1.0
    assert scores["accuracy"]["child.dob"] == 1.0
    lines = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert [line["file"] for line in lines] == ["001-referral.eml", "002-oof.eml"]
    assert lines[0]["replies"] == ["nia.gwent@testhealth.nhs.example"]
    assert lines[1]["replies"] == []
    assert lines[0]["case"] == "new"
    assert lines[0]["case_id"].startswith("CCAS-")


def test_eval_leaves_corpus_untouched(tmp_path):
    corpus = make_labelled_corpus(tmp_path / "corpus")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in corpus.rglob("*"))

    run_eval(str(corpus))

    assert sorted((p.name, p.stat().st_mtime_ns) for p in corpus.rglob("*")) == before


def test_eval_reports_wrong_prediction(tmp_path):
    corpus = make_labelled_corpus(tmp_path / "corpus")
    label = corpus / "emails" / "001-referral.json"
    data = json.loads(label.read_text(encoding="utf-8"))
    data["category"] = "query"
    label.write_text(json.dumps(data), encoding="utf-8")

    scores = json.loads(run_eval(str(corpus), "--json").stdout)

    assert scores["accuracy"]["category"] == 0.5


def test_eval_real_corpus_never_answers_automation(shared_corpus, tmp_path):
    corpus = load_corpus(shared_corpus("real"))

    predictions = triage_corpus(corpus, tmp_path)
    scores = score_kinds(corpus, predictions)

    assert scores["crashed"] == 0
    assert scores["bugs"] == 0
    assert scores["replies_to_no_reply"] == 0, scores["replied_to_no_reply_files"]
    assert scores["recall_by_kind"]["autoreply"] >= 0.98
    assert scores["recall_by_kind"]["bounce"] >= 0.98


def test_eval_ccas_corpus_runs_every_message(shared_corpus, tmp_path):
    corpus = load_corpus(shared_corpus("ccas"))

    predictions = triage_corpus(corpus, tmp_path)
    scores = score_labelled(corpus, predictions)

    assert scores["messages"] == len(corpus.files)
    assert scores["crashed"] == 0
    assert all(p["outcome"] in ("handled", "needs_person", "retry") for p in predictions)
