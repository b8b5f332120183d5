"""`ccas-bot eval`: full triage of a labelled corpus, offline, scored against its labels.

Messages are triaged in file-name order into a throw-away SQLite database, with a
sender that records instead of sending. Labels are read only after every message
has been triaged, so they cannot leak into the answers.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import tempfile
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.app import build_context, open_store
from bot.config import config_from_mapping
from bot.errors import MessageError
from bot.intake import Intake, Processed
from bot.mailboxes.base import MailRef
from bot.registers import import_cases, import_schools
from replies.send import RecordingSender

ACK_PURPOSES = {"professional_acknowledgement", "personal_acknowledgement", "school_portal_pointer",
                "professional_send_notice"}
CHILD_FIELDS = ("first_name", "last_name", "dob", "upn", "nhs_number", "school_urn", "year_group")


class CorpusMailbox:
    """A read-only folder of .eml files: nothing is moved, so the corpus stays as it is."""

    source = "corpus"

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root = root
        self.files = files

    def open(self):
        return str(self.root), None

    def close(self) -> None:
        pass

    def list_new(self, after_uid: int) -> list[MailRef]:
        return [MailRef(str(self.root), None, path.relative_to(self.root).as_posix()) for path in self.files]

    def fetch(self, ref: MailRef) -> bytes:
        try:
            return (self.root / ref.uid).read_bytes()
        except OSError:
            raise MessageError("unreadable_file") from None

    def contains(self, ref: MailRef) -> bool:
        return False

    def move_to_processed(self, ref: MailRef) -> None:
        pass

    def move_to_quarantine(self, ref: MailRef) -> None:
        pass


@dataclass
class Corpus:
    root: Path
    files: list[Path]
    labelled: bool
    config_data: dict


def load_corpus(path: Path) -> Corpus:
    emails = path / "emails"
    if emails.is_dir():
        directory = path / "register" / "directory.toml"
        data = tomllib.loads(directory.read_text(encoding="utf-8")) if directory.is_file() else {}
        return Corpus(emails, sorted(emails.glob("*.eml")), True, _config_from_directory(data))
    return Corpus(path, sorted(path.rglob("*.eml"), key=lambda p: p.relative_to(path).as_posix()),
                  False, {})


def _config_from_directory(directory: dict) -> dict:
    council = {key: directory[key] for key in ("la_name", "ccas_inbox", "send_inbox", "portal_url")
               if key in directory}
    council["panel_members"] = [member["email"] for member in directory.get("panel_members", [])
                                if "email" in member]
    trusted = {role: directory.get("trusted_domains", {}).get(role, [])
               for role in ("school", "health", "social_care", "la", "send")}
    return {"council": council, "trusted_domains": trusted}


def triage_corpus(corpus: Corpus, workdir: Path) -> list[dict]:
    """Triage every message and return one prediction per message, in order."""
    data = {**corpus.config_data, "store": {"url": f"sqlite:///{workdir / 'eval.sqlite3'}"}}
    config = config_from_mapping(data, base_dir=workdir)
    store = open_store(config)
    register = corpus.root.parent / "register"
    if corpus.labelled and (register / "schools.csv").is_file():
        import_schools(store, register / "schools.csv")
    if corpus.labelled and (register / "cases.csv").is_file():
        import_cases(store, register / "cases.csv")

    sender = RecordingSender()
    context = dataclasses.replace(build_context(config, store), replay_clock=True)
    intake = Intake(CorpusMailbox(corpus.root, corpus.files), context, sender)
    opened: dict[str, str] = {}
    predictions = []
    for ref in intake.mailbox.list_new(0):
        try:
            processed = intake.process_ref(ref)
        except Exception as error:  # eval reports a crash and carries on with the next message
            predictions.append({"file": ref.uid, "outcome": "crashed", "replies": [],
                                "reasons": [f"crash:{type(error).__name__}"]})
            continue
        predictions.append(_prediction(processed, store, opened))
    return predictions


def _prediction(processed: Processed, store, opened: dict[str, str]) -> dict:
    triage = processed.triage
    stored = processed.stored
    outbox = store.outbox_for_message(stored.pk) if stored else []
    purposes = {item.purpose for item in outbox}
    if triage is not None:
        reasons = list(triage.reasons)
    elif stored is not None:
        reasons = store.message_reasons(stored.pk)
    else:
        reasons = []
    prediction = {
        "file": processed.ref.uid,
        "outcome": stored.outcome if stored else "crashed",
        "replies": [item.recipient for item in outbox],
        "reasons": reasons,
        "case_id": stored.case_id if stored else None,
    }
    if triage is None or triage.classification is None:
        prediction["category"] = None
        return prediction

    case_label = "none"
    if triage.new_case_id:
        opened[triage.new_case_id] = f"NEW-{len(opened) + 1}"
        case_label = "new"
    elif triage.match.case_id:
        case_label = opened.get(triage.match.case_id, triage.match.case_id)
    elif triage.match.method == "ambiguous":
        case_label = "ambiguous"

    child = triage.child
    details = {name: getattr(child, name, None) for name in CHILD_FIELDS}
    if triage.match.case_id:
        case = store.get_case(triage.match.case_id)
        if case is not None:
            # For a known case the coordinator records the register's values.
            for name in ("first_name", "last_name", "dob", "upn", "nhs_number", "school_urn"):
                value = getattr(case, name)
                if value:
                    details[name] = value
    details = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in details.items() if v not in (None, "")}

    decision = triage.decision
    prediction.update({
        "category": triage.classification.category,
        "urgent": triage.urgent,
        "child": details,
        "reason": getattr(child, "reason", None),
        "ehcp": triage.ehcp,
        "attachments": sorted({a.kind for a in triage.message.attachments if not a.inline}),
        "case": case_label,
        "expected": {
            "acknowledge": bool(purposes & ACK_PURPOSES),
            "forward_to_send": "forward_to_send" in purposes,
            "agenda": (decision.agenda if decision and decision.agenda else "none"),
            "needs_review": prediction["outcome"] == "needs_person",
        },
        "alerted": "duty_urgent_alert" in purposes,
    })
    if triage.classification.category == "ehcp" and prediction["ehcp"] in (None, "none"):
        prediction["ehcp"] = "has_ehcp"
    return prediction


def score_labelled(corpus: Corpus, predictions: list[dict]) -> dict:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    urgent = {"tp": 0, "fp": 0, "fn": 0}
    wrong_auto = 0
    alerts_missing = 0
    for prediction in predictions:
        label_path = corpus.root / Path(prediction["file"]).with_suffix(".json")
        if not label_path.is_file():
            continue
        label = json.loads(label_path.read_text(encoding="utf-8"))
        for key, expected in _flatten(label).items():
            if key == "notes" or expected is None:
                continue
            actual = _flatten(prediction).get(key)
            if key == "attachments":
                actual, expected = sorted(actual or []), sorted(expected)
            counts[key][1] += 1
            counts[key][0] += int(actual == expected)

        predicted_urgent, expected_urgent = bool(prediction.get("urgent")), bool(label.get("urgent"))
        urgent["tp"] += predicted_urgent and expected_urgent
        urgent["fp"] += predicted_urgent and not expected_urgent
        urgent["fn"] += expected_urgent and not predicted_urgent
        alerts_missing += expected_urgent and not prediction.get("alerted")

        predicted_case = prediction.get("case")
        if predicted_case not in (None, "new", "none", "ambiguous") and predicted_case != label.get("case"):
            wrong_auto += 1

    scores = {key: round(right / total, 3) for key, (right, total) in sorted(counts.items())}
    return {
        "messages": len(predictions),
        "crashed": sum(p["outcome"] == "crashed" for p in predictions),
        "accuracy": scores,
        "counts": {key: f"{right}/{total}" for key, (right, total) in sorted(counts.items())},
        "urgent_precision": _ratio(urgent["tp"], urgent["tp"] + urgent["fp"]),
        "urgent_recall": _ratio(urgent["tp"], urgent["tp"] + urgent["fn"]),
        "urgent_alerts_missing": alerts_missing,
        "wrong_auto_match": wrong_auto,
    }


def score_kinds(corpus: Corpus, predictions: list[dict]) -> dict:
    labels_path = corpus.root / "labels.csv"
    labels = {}
    if labels_path.is_file():
        with labels_path.open(encoding="utf-8") as handle:
            labels = {row["file"]: row for row in csv.DictReader(handle)}
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    replied_to_no_reply = []
    for prediction in predictions:
        label = labels.get(prediction["file"])
        if label is None:
            continue
        automatic = prediction.get("category") in ("auto_reply", "bounce")
        kind = label["kind"]
        hit = automatic if kind in ("autoreply", "bounce") else not automatic
        if kind == "secure_notice":
            hit = prediction.get("category") == "secure_message"
        by_kind[kind][0] += int(hit)
        by_kind[kind][1] += 1
        if label["expect"] == "no_reply" and prediction["replies"]:
            replied_to_no_reply.append(prediction["file"])
    return {
        "messages": len(predictions),
        "crashed": sum(p["outcome"] == "crashed" for p in predictions),
        "bugs": sum(any(r.startswith("bug:") for r in p["reasons"]) for p in predictions),
        "recall_by_kind": {kind: _ratio(hit, total) for kind, (hit, total) in sorted(by_kind.items())},
        "counts_by_kind": {kind: f"{hit}/{total}" for kind, (hit, total) in sorted(by_kind.items())},
        "replies_to_no_reply": len(replied_to_no_reply),
        "replied_to_no_reply_files": replied_to_no_reply,
    }


def run_eval(path: Path, predictions: Path | None = None, as_json: bool = False) -> int:
    if not path.is_dir():
        print(f"ccas-bot: corpus folder {path} not found", file=sys.stderr)
        return 2
    corpus = load_corpus(path)
    with tempfile.TemporaryDirectory(prefix="ccas-eval-") as workdir:
        results = triage_corpus(corpus, Path(workdir))

    if predictions is not None:
        with predictions.open("w", encoding="utf-8") as handle:
            for line in results:
                handle.write(json.dumps(line, default=str) + "\n")

    scores = score_labelled(corpus, results) if corpus.labelled else score_kinds(corpus, results)
    if as_json:
        print(json.dumps(scores, indent=2))
    else:
        _print_scores(scores)
    return 0


def _print_scores(scores: dict) -> None:
    for key, value in scores.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for inner, inner_value in value.items():
                print(f"  {inner:<32} {inner_value}")
        elif isinstance(value, list):
            print(f"{key}: {', '.join(value) or '-'}")
        else:
            print(f"{key:<34} {value}")


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None
