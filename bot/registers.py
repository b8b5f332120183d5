"""Importing the schools and case registers from CSV files.

Schools come from a GIAS establishment extract (`edubasealldata*.csv`, Windows-1252),
a GIAS links extract (`links_edubasealldata*.csv`: URN, LinkURN, LinkType,
LinkEstablishedDate) or a plain CSV with a URN, a name and an email domain. Cases
come from a CSV with one row per child. Column names are compared without case,
spaces, brackets or underscores, so "LA (code)" is the same column as "la_code".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from parsers.identifiers import is_valid_nhs_number, is_valid_upn, normalise_upn
from store.records import Store

# Accepted spellings of each school column, after _key().
SCHOOL_COLUMNS = {
    "urn": ("urn",),
    "laestab": ("laestab", "dfenumber", "dfeno"),
    "la_code": ("lacode", "la"),
    "establishment_number": ("establishmentnumber",),
    "name": ("establishmentname", "name", "schoolname"),
    "establishment_type": ("typeofestablishmentname", "typeofestablishment", "type"),
    "postcode": ("postcode",),
    "domain": ("domain", "emaildomain", "domains"),
    "website": ("schoolwebsite", "website"),
    "status": ("establishmentstatusname", "establishmentstatus", "status"),
    "closed_on": ("closedate", "closed", "closedon"),
    "link_urn": ("linkurn", "linkedurn"),
    "link_type": ("linktype",),
    "link_date": ("linkestablisheddate", "linkdate"),
    "predecessor_urns": ("predecessorurn", "predecessorurns", "predecessor"),
    "successor_urns": ("successorurn", "successorurns", "successor"),
}

CASE_STATUSES = {"open": "open", "closed": "closed", "send": "send", "withsend": "send"}
EHCP_VALUES = {"none", "has_ehcp", "draft_decision", "assessment"}
CASE_ID = re.compile(r"^[A-Z]{2,10}-\d{4}-\d{4,}$")

Progress = Callable[[Iterable], Iterable]


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    links: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        output = [f"added {self.added}, updated {self.updated}, rejected {len(self.rejected)}"]
        if self.links:
            output[0] += f", school links {self.links}"
        output += [f"  line {line}: {reason}" for line, reason in self.rejected]
        return output


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with normalised column names; UTF-8, else Windows-1252 as GIAS writes."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        yield reader.line_num, {_key(k): (v or "").strip() for k, v in row.items() if k}


def _column(row: dict[str, str], names: tuple[str, ...]) -> str:
    return next((row[name] for name in names if row.get(name)), "")


def _no_progress(rows: Iterable) -> Iterable:
    return rows


def _parse_date(value: str, column: str) -> date | None:
    """Read an ISO date or a UK day-first date (GIAS writes 31-08-2024)."""
    value = value.strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{column} {value!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _domain_of(website: str) -> str:
    """Return the host of a school website without "www.", as the likely email domain."""
    if not website:
        return ""
    host = urlsplit(website if "//" in website else f"//{website}").hostname or ""
    return host.lower().removeprefix("www.")


def _urn_list(value: str) -> list[str]:
    return [urn for urn in re.split(r"[;,\s]+", value) if urn.isdigit()]


def import_schools(store: Store, path: Path, progress: Progress = _no_progress) -> ImportSummary:
    """Add or update schools by URN, with closed schools marked and GIAS links kept."""
    summary = ImportSummary()
    schools: dict[str, dict] = {}
    links: list[dict] = []
    for line, row in progress(list(_read_rows(path))):
        values = {name: _column(row, names) for name, names in SCHOOL_COLUMNS.items()}
        urn = values["urn"]
        if not urn.isdigit():
            summary.rejected.append((line, f"URN {urn!r} is missing or not a number"))
            continue
        try:
            link_date = _parse_date(values["link_date"], "LinkEstablishedDate")
            closed_on = _parse_date(values["closed_on"], "CloseDate")
        except ValueError as error:
            summary.rejected.append((line, str(error)))
            continue

        links += _links_of(urn, values, link_date)
        if not values["name"]:
            if not values["link_urn"]:
                summary.rejected.append((line, "EstablishmentName is missing"))
            continue  # a row of a links extract
        if urn in schools:
            summary.rejected.append((line, f"URN {urn} appears twice; the first row is kept"))
            continue
        schools[urn] = _school_row(values, closed_on)

    if schools:
        summary.added, summary.updated = store.upsert_schools(schools.values())
    if links:
        summary.links = store.replace_school_links(links)
    return summary


def _school_row(values: dict[str, str], closed_on: date | None) -> dict:
    laestab = re.sub(r"\D", "", values["laestab"])
    la_code, number = re.sub(r"\D", "", values["la_code"]), re.sub(r"\D", "", values["establishment_number"])
    if len(laestab) != 7 and len(la_code) == 3 and len(number) == 4:
        laestab = la_code + number
    domain = values["domain"].lower().lstrip("@") or _domain_of(values["website"])
    closed = values["status"].lower().startswith("closed") or (closed_on is not None and closed_on <= date.today())
    return {
        "urn": values["urn"],
        "laestab": laestab if len(laestab) == 7 else "",
        "name": values["name"],
        "establishment_type": values["establishment_type"],
        "postcode": values["postcode"],
        "domain": domain,
        "website": values["website"],
        "status": "closed" if closed else "open",
        "closed_on": closed_on,
    }


def _links_of(urn: str, values: dict[str, str], link_date: date | None) -> list[dict]:
    links = []
    if values["link_urn"].isdigit():
        links.append({"urn": urn, "linked_urn": values["link_urn"], "link_type": values["link_type"] or "Linked",
                      "linked_on": link_date})
    for linked in _urn_list(values["predecessor_urns"]):
        links.append({"urn": urn, "linked_urn": linked, "link_type": "Predecessor", "linked_on": link_date})
    for linked in _urn_list(values["successor_urns"]):
        links.append({"urn": urn, "linked_urn": linked, "link_type": "Successor", "linked_on": link_date})
    return [link for link in links if link["linked_urn"] != urn]


def import_cases(store: Store, path: Path, progress: Progress = _no_progress) -> ImportSummary:
    """Add or update cases by case id, with school history, lead party and blocking keys."""
    summary = ImportSummary()
    rows: dict[str, dict] = {}
    for line, row in progress(list(_read_rows(path))):
        try:
            case = _case_row(row)
        except ValueError as error:
            summary.rejected.append((line, str(error)))
            continue
        if case["id"] in rows:
            summary.rejected.append((line, f"case_id {case['id']} appears twice; the first row is kept"))
            continue
        rows[case["id"]] = case
    if rows:
        summary.added, summary.updated = store.upsert_cases(rows.values())
    return summary


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;|]", value) if part.strip()]


def _case_row(row: dict[str, str]) -> dict:
    case_id = row.get("caseid", "").upper()
    if not case_id:
        raise ValueError("case_id is missing")
    if not CASE_ID.match(case_id):
        raise ValueError(f"case_id {case_id!r} is not like CCAS-2026-0042")
    if not row.get("firstname") or not row.get("lastname"):
        raise ValueError("first_name or last_name is missing")

    upn = normalise_upn(row.get("upn", ""))
    if upn and not is_valid_upn(upn):
        raise ValueError("upn fails its check letter")
    former_upns = [normalise_upn(value) for value in _split(row.get("formerupns", ""))]
    if any(not is_valid_upn(value) for value in former_upns):
        raise ValueError("a former UPN fails its check letter")
    nhs_number = re.sub(r"[\s-]", "", row.get("nhsnumber", ""))
    if nhs_number and not is_valid_nhs_number(nhs_number):
        raise ValueError("nhs_number fails its check digit")

    status_text = _key(row.get("status", "") or "open")
    if status_text not in CASE_STATUSES:
        raise ValueError(f"status {row.get('status')!r} is not open, closed or send")
    ehcp = (row.get("ehcp", "") or "none").lower()
    if ehcp not in EHCP_VALUES:
        raise ValueError(f"ehcp {ehcp!r} is not one of {', '.join(sorted(EHCP_VALUES))}")

    known_as = _split(row.get("knownas", ""))
    return {
        "id": case_id,
        "first_name": row["firstname"],
        "last_name": row["lastname"],
        "known_as": known_as[0] if known_as else "",
        "other_first_names": known_as[1:] + _split(row.get("otherfirstnames", "")),
        "other_last_names": _split(row.get("otherlastnames", "") or row.get("formerlastnames", "")),
        "dob": _parse_date(row.get("dob", ""), "dob"),
        "upn": upn,
        "former_upns": former_upns,
        "nhs_number": nhs_number,
        "school_urn": row.get("schoolurn", ""),
        "former_school_urns": _urn_list(row.get("formerschoolurns", "")),
        "status": CASE_STATUSES[status_text],
        "ehcp": ehcp,
        "opened": _parse_date(row.get("opened", ""), "opened"),
        "last_reviewed": _parse_date(row.get("lastreviewed", ""), "last_reviewed"),
        "next_review": _parse_date(row.get("nextreview", ""), "next_review"),
        "closed_on": _parse_date(row.get("closedon", ""), "closed_on"),
        "lead_email": row.get("leademail", "").lower(),
        "lead_professional": row.get("leadprofessional", ""),
    }
