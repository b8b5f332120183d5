"""Generate fictional, labelled training emails for the message classifier.

Each example is written from the templates in parsers/training_templates.py, with
slots filled from the invented lists in parsers/training_slots.py, and then roughened
with the noise real inboxes have: greetings, signatures, confidentiality footers,
typos, missing punctuation and odd capitals. The same count and seed always give the
same examples. Generating 10,000 takes a few seconds on one CPU core.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from parsers import training_slots as slots_data
from parsers import training_templates as templates
from parsers.identifiers import upn_check_letter

# Exclusive categories of the text classifier. auto_reply, bounce and secure_message are
# left out because header rules in parsers/automation.py already detect them.
CATEGORIES = (
    "support_request",
    "school_notification",
    "change_of_circumstances",
    "query",
    "ehcp",
    "action_update",
    "parent_contact",
    "unrelated",
)

# Categories whose messages are about one child, so a risk sentence can appear in them.
_CHILD_CATEGORIES = frozenset(CATEGORIES) - {"query", "unrelated"}
_URGENT_RATE = 0.15
_NEGATED_RISK_RATE = 0.15


@dataclass(frozen=True)
class TrainingExample:
    """One generated email with its category and whether it signals a child at risk."""

    subject: str
    body: str
    category: str
    urgent: bool

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


@dataclass
class _Sender:
    name: str
    role: str
    organisation: str
    email: str
    phone: str


def generate_examples(count: int, seed: int = 0) -> list[TrainingExample]:
    """Generate `count` examples, as near equal numbers per category as `count` allows."""
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")

    rng = random.Random(seed)
    examples = [_BUILDERS[CATEGORIES[index % len(CATEGORIES)]](rng) for index in range(count)]
    rng.shuffle(examples)
    return examples


# ---------------------------------------------------------------------------
# Slots


def fill(template: str, slots: dict[str, str]) -> str:
    """Fill `{name}` slots; a slot name missing from `slots` raises KeyError."""
    return template.format_map(slots)


def make_slots(rng: random.Random) -> dict[str, str]:
    """Draw one example's child, school, dates, identifiers and other slot values."""
    girl = rng.random() < 0.5
    first = rng.choice(slots_data.GIRL_NAMES if girl else slots_data.BOY_NAMES)
    last = rng.choice(slots_data.LAST_NAMES)
    he, him, his = ("she", "her", "her") if girl else ("he", "him", "his")
    year_number = rng.choice((3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 13))
    council = rng.choice(slots_data.COUNCILS)

    slots = {
        "first": first,
        "last": last,
        "child": rng.choice((f"{first} {last}", f"{first} {last}", first, f"{first} {last[0]}")),
        "initials": rng.choice((f"{first[0]}{last[0]}", f"{first[0]}.{last[0]}.", f"{first} {last[0]}")),
        "he": he,
        "him": him,
        "his": his,
        "He": he.capitalize(),
        "His": his.capitalize(),
        "son": rng.choice(("daughter", "girl", "child")) if girl else rng.choice(("son", "boy", "child")),
        "yearnum": str(year_number),
        "year": _year_group(rng, year_number),
        "year_plain": f"Year {year_number}",
        "year_plain_past": rng.choice(("Year 2", "Year 4", "2021", "2023", "primary school")),
        "year_label": rng.choice(("2025/26", "2026-27", "this term", "next term")),
        "dob": _date_of_birth(rng, year_number),
        "date": _uk_date(rng),
        "date2": _uk_date(rng),
        "panel_date": _uk_date(rng),
        "month": rng.choice(slots_data.MONTHS),
        "weekday": rng.choice(slots_data.WEEKDAYS),
        "pct": f"{rng.randint(8, 79)}%",
        "pct2": f"{rng.randint(5, 60)}%",
        "days": str(rng.randint(15, 60)),
        "weeks": str(rng.randint(3, 20)),
        "hours": str(rng.choice((3, 4, 5, 6, 8, 10, 12, 15))),
        "condition": rng.choice(slots_data.CONDITIONS),
        "treatment": rng.choice(slots_data.TREATMENTS),
        "school": _school_name(rng),
        "school2": _school_name(rng),
        "council": council,
        "ref": _case_reference(rng),
        "upn": _upn(rng),
        "nhs": _nhs_number(rng),
        "phone": _phone(rng),
        "panel_contact": rng.choice(slots_data.ADULT_FIRST_NAMES),
        "digits": str(rng.randint(1000, 99999)),
        "action": rng.choice(slots_data.PANEL_ACTIONS),
        "service": rng.choice(slots_data.SERVICES),
    }
    slots["outcome"] = fill(rng.choice(slots_data.PANEL_OUTCOMES), slots)
    slots["relation_line"] = fill(rng.choice(slots_data.PARENT_RELATIONS)[1], slots)
    return slots


def _year_group(rng: random.Random, number: int) -> str:
    form = rng.choice(("Year {n}", "Year {n}", "Y{n}", "Yr {n}", "year {n}", "Yr{n}"))
    return form.format(n=number)


def _uk_date(rng: random.Random, year: int | None = None) -> str:
    year = year or rng.choice((2025, 2026))
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    month_name = slots_data.MONTHS[(month - 1) % len(slots_data.MONTHS)]
    forms = (
        f"{day:02d}/{month:02d}/{year}",
        f"{day}/{month}/{str(year)[2:]}",
        f"{day}.{month:02d}.{year}",
        f"{day} {month_name} {year}",
        f"{day} {month_name}",
        f"{day}{_ordinal_suffix(day)} {month_name}",
        f"{rng.choice(slots_data.WEEKDAYS)} {day}{_ordinal_suffix(day)} {month_name[:3]}",
        f"{day}-{month:02d}-{year}",
    )
    return rng.choice(forms)


def _ordinal_suffix(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date_of_birth(rng: random.Random, year_number: int) -> str:
    return _uk_date(rng, year=2026 - 5 - year_number - rng.choice((0, 1)))


def _school_name(rng: random.Random) -> str:
    return f"{rng.choice(slots_data.SCHOOL_STEMS)} {rng.choice(slots_data.SCHOOL_KINDS)}"


def _case_reference(rng: random.Random) -> str:
    form = rng.choice(("CCAS-{y}-{n:04d}", "CCAS-{y}-{n:04d}", "CCAS/{y}/{n:04d}", "ccas-{y}-{n:04d}"))
    return form.format(y=rng.choice((2024, 2025, 2026)), n=rng.randint(1, 400))


def _upn(rng: random.Random) -> str:
    body = "".join(rng.choices("0123456789", k=12))
    return upn_check_letter(body) + body


def _nhs_number(rng: random.Random) -> str:
    """Draw a number that passes the modulus 11 check and does not start with 0."""
    while True:
        digits = rng.choice("123456789") + "".join(rng.choices("0123456789", k=8))
        total = sum(int(digit) * weight for digit, weight in zip(digits, range(10, 1, -1)))
        check = (11 - total % 11) % 11
        if check != 10:
            break
    digits += str(check)
    form = rng.choice(("{a}{b}{c}", "{a} {b} {c}", "{a}-{b}-{c}"))
    return form.format(a=digits[:3], b=digits[3:6], c=digits[6:])


def _phone(rng: random.Random) -> str:
    return rng.choice((f"07700 900{rng.randint(100, 999)}", f"01632 960{rng.randint(100, 999)}",
                       f"0113 496 0{rng.randint(100, 999)}"))


# ---------------------------------------------------------------------------
# Senders


def _support_sender(rng: random.Random, slots: dict[str, str]) -> _Sender:
    role, organisation, domain = rng.choice(slots_data.SUPPORT_ROLES)
    trust = rng.choice(slots_data.COUNCILS)
    organisation = organisation.format(trust=trust, council=slots["council"],
                                       stem=rng.choice(slots_data.SCHOOL_STEMS))
    return _person(rng, role, organisation, f"{_slug(trust)}.{domain}")


def _school_sender(rng: random.Random, slots: dict[str, str]) -> _Sender:
    role = rng.choice(slots_data.SCHOOL_ROLES).format(yearnum=slots["yearnum"])
    return _person(rng, role, slots["school"], f"{_slug(slots['school'].split(' ')[0])}.sch.example")


def _panel_sender(rng: random.Random, slots: dict[str, str]) -> _Sender:
    return _person(rng, rng.choice(slots_data.PANEL_ROLES), f"{slots['council']} Council",
                   f"{_slug(slots['council'])}.gov.example")


def _any_professional(rng: random.Random, slots: dict[str, str]) -> _Sender:
    return rng.choice((_support_sender, _school_sender, _panel_sender))(rng, slots)


def _person(rng: random.Random, role: str, organisation: str, domain: str) -> _Sender:
    first = rng.choice(slots_data.ADULT_FIRST_NAMES)
    last = rng.choice(slots_data.LAST_NAMES)
    email = f"{_slug(first)}.{_slug(last)}@{domain}"
    return _Sender(f"{first} {last}", role, organisation, email, _phone(rng))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", text.lower())


# ---------------------------------------------------------------------------
# Categories


def _pick(rng: random.Random, pool: tuple[str, ...], slots: dict[str, str]) -> str:
    return fill(rng.choice(pool), slots)


def _picks(rng: random.Random, pool: tuple[str, ...], slots: dict[str, str], low: int, high: int) -> list[str]:
    chosen = rng.sample(pool, k=min(len(pool), rng.randint(low, high)))
    return [fill(template, slots) for template in chosen]


def _with_role(slots: dict[str, str], sender: _Sender) -> dict[str, str]:
    slots = dict(slots)
    slots["role"] = sender.role
    slots["role_lower"] = sender.role if sender.role.isupper() else _lower_role(sender.role)
    slots["role_short"] = sender.role.split(",")[0]
    slots["org"] = sender.organisation
    slots["org_short"] = sender.organisation.split(",")[0]
    return slots


def _lower_role(role: str) -> str:
    # Keep acronyms such as CAMHS, GP and SENCo as written.
    return " ".join(word if any(c.isupper() for c in word[1:]) or word.isupper() else word.lower()
                    for word in role.split(" "))


def _details_block(rng: random.Random, slots: dict[str, str]) -> str:
    fields = [("Name", f"{slots['first']} {slots['last']}"), ("DOB", slots["dob"]),
              ("School", slots["school"]), ("Year group", slots["year"]),
              ("UPN", slots["upn"]), ("NHS number", slots["nhs"])]
    kept = [field for field in fields if rng.random() < 0.75]
    separator = rng.choice((": ", " - ", ":\t", ": "))
    return "\n".join(f"{label}{separator}{value}" for label, value in kept)


def _support_request(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    sender = _support_sender(rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.SUPPORT_REQUEST

    sentences = [_pick(rng, pool["opening"], slots)]
    if rng.random() < 0.85:
        sentences += _picks(rng, pool["detail"], slots, 1, 3)
    if rng.random() < 0.3:
        sentences.append(_pick(rng, templates.EHCP_NOT_ISSUED, slots))
    if rng.random() < 0.4:
        sentences.append(_pick(rng, pool["consent"], slots))
    sentences += _picks(rng, pool["request"], slots, 0, 2)
    if rng.random() < 0.3:
        sentences.append(_details_block(rng, slots))
    return _finish(rng, "support_request", _pick(rng, pool["subject"], slots), sentences, sender, slots)


def _school_notification(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    sender = _school_sender(rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.SCHOOL_NOTIFICATION

    sentences = [_pick(rng, pool["opening"], slots)]
    sentences += _picks(rng, pool["detail"], slots, 0, 3)
    if rng.random() < 0.15:
        sentences.append(_pick(rng, templates.EHCP_NOT_ISSUED, slots))
    if rng.random() < 0.7:
        sentences.append(_pick(rng, pool["request"], slots))
    if rng.random() < 0.25:
        sentences.append(_details_block(rng, slots))
    return _finish(rng, "school_notification", _pick(rng, pool["subject"], slots), sentences, sender, slots)


def _change_of_circumstances(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    sender = _any_professional(rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.CHANGE_OF_CIRCUMSTANCES

    sentences = [_pick(rng, pool["opening"], slots)]
    sentences += _picks(rng, pool["change"], slots, 1, 2)
    if rng.random() < 0.15:
        sentences.append(_pick(rng, templates.EHCP_NOT_ISSUED, slots))
    if rng.random() < 0.6:
        sentences.append(_pick(rng, pool["follow_up"], slots))
    return _finish(rng, "change_of_circumstances", _pick(rng, pool["subject"], slots), sentences, sender, slots,
                   reply_rate=0.35)


def _query(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    sender = _any_professional(rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.QUERY

    if rng.random() < 0.35:
        sentences = [_pick(rng, pool["thanks"], slots)]
        if rng.random() < 0.3:
            sentences.append(rng.choice(("Have a good weekend.", "Speak soon.", "See you at panel.",
                                         "I'll pass this on to the family.", "")))
        subject = rng.choice(("RE: ", "Re: ", "")) + _pick(rng, pool["subject"], slots)
        return _finish(rng, "query", subject, sentences, sender, slots, reply_rate=0.0)

    sentences = _picks(rng, pool["question"], slots, 1, 2)
    if rng.random() < 0.5:
        sentences.insert(rng.randint(0, 1), _pick(rng, pool["context"], slots))
    return _finish(rng, "query", _pick(rng, pool["subject"], slots), sentences, sender, slots)


def _ehcp(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    frame = rng.choice(("support", "school", "change", "direct"))
    sender = {"support": _support_sender, "school": _school_sender,
              "change": _any_professional, "direct": _any_professional}[frame](rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.EHCP

    if frame == "support":
        sentences = [_pick(rng, templates.SUPPORT_REQUEST["opening"], slots)]
    elif frame == "school":
        sentences = [_pick(rng, templates.SCHOOL_NOTIFICATION["opening"], slots)]
    elif frame == "change":
        sentences = [_pick(rng, templates.CHANGE_OF_CIRCUMSTANCES["opening"], slots)]
    else:
        sentences = []
    sentences.insert(rng.randint(0, len(sentences)), _pick(rng, pool["status"], slots))
    sentences += _picks(rng, pool["situation"], slots, 0, 2)
    if rng.random() < 0.6:
        sentences.append(_pick(rng, pool["request"], slots))
    return _finish(rng, "ehcp", _pick(rng, pool["subject"], slots), sentences, sender, slots)


def _action_update(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    sender = _panel_sender(rng, slots)
    slots = _with_role(slots, sender)
    pool = templates.ACTION_UPDATE

    sentences = [_pick(rng, pool["opening"], slots), _pick(rng, pool["outcome"], slots)]
    if rng.random() < 0.6:
        sentences.append(_pick(rng, pool["closing"], slots))
    return _finish(rng, "action_update", _pick(rng, pool["subject"], slots), sentences, sender, slots,
                   reply_rate=0.3)


def _parent_contact(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    parent_first = rng.choice(slots_data.ADULT_FIRST_NAMES)
    parent_last = slots["last"] if rng.random() < 0.7 else rng.choice(slots_data.LAST_NAMES)
    domain = rng.choice(("mailbox.example", "webmail.example", "inbox.example"))
    sender = _Sender(f"{parent_first} {parent_last}", "", "",
                     f"{parent_first.lower()}{rng.randint(1, 99)}@{domain}", _phone(rng))
    slots = _with_role(slots, sender)
    pool = templates.PARENT_CONTACT

    sentences = [_pick(rng, pool["opening"], slots)]
    sentences += _picks(rng, pool["detail"], slots, 0, 3)
    if rng.random() < 0.8:
        sentences.append(_pick(rng, pool["request"], slots))
    return _finish(rng, "parent_contact", _pick(rng, pool["subject"], slots), sentences, sender, slots,
                   parent=True)


def _unrelated(rng: random.Random) -> TrainingExample:
    slots = make_slots(rng)
    kind = rng.choice(tuple(templates.UNRELATED))
    subject, body = rng.choice(templates.UNRELATED[kind])
    sentences = [fill(sentence, slots) for sentence in re.split(r"(?<=[.!?])\s+", body)]
    if rng.random() < 0.5:
        # Reorder and trim, so that the model learns words rather than whole fixed texts.
        rng.shuffle(sentences)
        sentences = sentences[: max(1, len(sentences) - rng.randint(0, 1))]

    if kind in ("newsletter", "marketing"):
        organisation = rng.choice(("Education Update Ltd", "SchoolSmart", f"{slots['council']} Learning",
                                   "Brightpath Tutors", "Classroom Supplies Direct"))
        sender = _person(rng, rng.choice(("Marketing Team", "Communications Officer", "Account Manager")),
                         organisation, "news.example")
    elif kind == "phishing":
        sender = _person(rng, "IT Service Desk", "Mail Administrator", "secure-login.example")
    else:
        sender = _any_professional(rng, slots)
    return _finish(rng, "unrelated", fill(subject, slots), sentences, sender, slots, reply_rate=0.05)


_BUILDERS: dict[str, Callable[[random.Random], TrainingExample]] = {
    "support_request": _support_request,
    "school_notification": _school_notification,
    "change_of_circumstances": _change_of_circumstances,
    "query": _query,
    "ehcp": _ehcp,
    "action_update": _action_update,
    "parent_contact": _parent_contact,
    "unrelated": _unrelated,
}


# ---------------------------------------------------------------------------
# Assembly and noise


def _finish(rng: random.Random, category: str, subject: str, sentences: list[str], sender: _Sender,
            slots: dict[str, str], *, reply_rate: float = 0.15, parent: bool = False) -> TrainingExample:
    """Add risk sentences, layout, a signature and noise, and return the example."""
    sentences = [sentence for sentence in sentences if sentence]
    urgent = False
    if category in _CHILD_CATEGORIES:
        if rng.random() < _URGENT_RATE:
            sentences.insert(rng.randint(1, len(sentences)), _pick(rng, templates.URGENT, slots))
            urgent = True
        elif rng.random() < _NEGATED_RISK_RATE:
            sentences.insert(rng.randint(1, len(sentences)), _pick(rng, templates.NOT_URGENT_RISK, slots))

    body = _layout(rng, sentences, sender, slots, parent=parent)
    # Casual writing is drawn for every category, a little more often for parents, so
    # that noise alone does not point to one category.
    body = _add_noise(rng, body, casual=rng.random() < (0.4 if parent else 0.25))
    subject = _subject_noise(rng, subject, reply_rate)
    return TrainingExample(subject=subject, body=body, category=category, urgent=urgent)


def _layout(rng: random.Random, sentences: list[str], sender: _Sender, slots: dict[str, str], *,
            parent: bool) -> str:
    lines: list[str] = []
    if rng.random() < 0.85:
        greeting = _pick(rng, templates.GREETINGS, slots)
        lines += [greeting + rng.choice((",", "", ",", " -")), ""]

    style = rng.random()
    if style < 0.4:
        lines.append(" ".join(sentences))
    elif style < 0.8:
        lines.append("\n\n".join(sentences))
    else:
        split = rng.randint(1, len(sentences))
        lines += [" ".join(sentences[:split]), "", " ".join(sentences[split:])]

    lines.append("")
    if rng.random() < 0.85:
        lines.append(rng.choice(templates.SIGN_OFFS) + rng.choice((",", "", ",")))
    lines += _signature(rng, sender, parent=parent)
    if not parent and rng.random() < 0.3:
        lines += ["", rng.choice(templates.FOOTERS)]
    return "\n".join(lines).strip()


def _signature(rng: random.Random, sender: _Sender, *, parent: bool) -> list[str]:
    if parent:
        name = rng.choice((sender.name, sender.name.split(" ")[0], sender.name.split(" ")[0], ""))
        tail = rng.choice(("", "", "Sent from my iPhone", "Sent from Outlook for Android",
                           "Get Outlook for iOS"))
        return [line for line in (name, "", tail) if line] if (name or tail) else []

    if rng.random() < 0.08:
        return [sender.name.split(" ")[0], "", "Sent from my iPhone"]
    lines = [sender.name]
    if rng.random() < 0.9:
        lines.append(sender.role)
    if rng.random() < 0.8:
        lines.append(sender.organisation)
    if rng.random() < 0.6:
        lines.append(rng.choice(("Tel: ", "T: ", "Mobile ", "")) + sender.phone)
    if rng.random() < 0.5:
        lines.append(sender.email)
    return lines


# Words of four letters or more get typos; an email address is matched whole so that
# its fictional .example domain is never changed.
_WORD_OR_ADDRESS = re.compile(r"[\w.+-]+@[\w.-]+|[A-Za-z]{4,}")


def _add_noise(rng: random.Random, text: str, *, casual: bool) -> str:
    typo_rate = 0.03 if casual else 0.01

    def maybe_typo(match: re.Match[str]) -> str:
        word = match.group(0)
        if "@" in word or rng.random() >= typo_rate:
            return word
        return _typo(rng, word)

    text = _WORD_OR_ADDRESS.sub(maybe_typo, text)
    if rng.random() < (0.3 if casual else 0.03):
        text = text.lower()
    if rng.random() < (0.3 if casual else 0.04):
        text = re.sub(r"\.(?=\s|$)", "", text)
    if rng.random() < 0.04:
        text = text.upper()
    if rng.random() < 0.1:
        text = re.sub(r"\n\n+", "\n", text)
    return text


def _typo(rng: random.Random, word: str) -> str:
    position = rng.randint(1, len(word) - 2)
    kind = rng.random()
    if kind < 0.4:
        return word[:position] + word[position + 1] + word[position] + word[position + 2:]
    if kind < 0.7:
        return word[:position] + word[position + 1:]
    return word[:position] + word[position] + word[position:]


def _subject_noise(rng: random.Random, subject: str, reply_rate: float) -> str:
    if rng.random() < reply_rate:
        subject = rng.choice(("RE: ", "Re: ", "FW: ", "Fwd: ", "RE: RE: ")) + subject
    if rng.random() < 0.05:
        subject = subject.upper()
    elif rng.random() < 0.05:
        subject = subject.lower()
    return subject.strip()
