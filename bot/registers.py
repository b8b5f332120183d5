"""Importing the schools and case registers from CSV files."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from parsers.identifiers import is_valid_nhs_number, is_valid_upn
from store.records import Store

# Accepted spellings of each column, compared without case, spaces or underscores.
SCHOOL_COLUMNS = {
    "urn": ("urn",),
    "laestab": ("laestab", "dfenumber", "establishmentnumber"),
    "name": ("establishmentname", "name", "schoolname"),
    "establishment_type": ("typeofestablishment", "typeofestablishmentname", "type"),
    "postcode": ("postcode",),
    "domain": ("domain", "emaildomain"),
    "status": ("establishmentstatus", "establishmentstatusname", "status"),
}


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        output = [f"added {self.added}, updated {self.updated}, rejected {len(self.rejected)}"]
        output += [f"  line {line}: {reason}" for line, reason in self.rejected]
        return output


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _read_rows(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "windows-1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    return [{_key(k): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(text.splitlines())]


def import_schools(store: Store, path: Path) -> ImportSummary:
    summary = ImportSummary()
    rows = []
    for line, row in enumerate(_read_rows(path), start=2):
        school = {field: next((row[name] for name in names if row.get(name)), "")
                  for field, names in SCHOOL_COLUMNS.items()}
        if not school["urn"].isdigit() or not school["name"]:
            summary.rejected.append((line, "missing URN or establishment name"))
            continue
        school["status"] = "closed" if school["status"].lower().startswith("closed") else "open"
        school["domain"] = school["domain"].lower()
        rows.append(school)
    summary.added, summary.updated = store.upsert_schools(rows)
    return summary


def import_cases(store: Store, path: Path) -> ImportSummary:
    summary = ImportSummary()
    rows = []
    for line, row in enumerate(_read_rows(path), start=2):
        try:
            rows.append(_case_row(row))
        except ValueError as error:
            summary.rejected.append((line, str(error)))
    summary.added, summary.updated = store.upsert_cases(rows)
    return summary


def _case_row(row: dict[str, str]) -> dict:
    case_id = row.get("caseid", "")
    if not case_id:
        raise ValueError("missing case_id")
    upn = row.get("upn", "").upper()
    if upn and not is_valid_upn(upn):
        raise ValueError("UPN fails its check letter")
    nhs_number = row.get("nhsnumber", "").replace(" ", "")
    if nhs_number and not is_valid_nhs_number(nhs_number):
        raise ValueError("NHS number fails its check digit")
    return {
        "id": case_id,
        "first_name": row.get("firstname", ""),
        "last_name": row.get("lastname", ""),
        "known_as": row.get("knownas", ""),
        "dob": _date(row.get("dob", ""), "dob"),
        "upn": upn,
        "nhs_number": nhs_number,
        "school_urn": row.get("schoolurn", ""),
        "status": row.get("status", "open") or "open",
        "ehcp": row.get("ehcp", "none") or "none",
        "opened": _date(row.get("opened", ""), "opened"),
        "last_reviewed": _date(row.get("lastreviewed", ""), "last_reviewed"),
        "lead_email": row.get("leademail", "").lower(),
    }


def _date(value: str, column: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not an ISO date (YYYY-MM-DD)") from None
