"""Plain-English labels for the codes the bot stores: categories, case statuses and risk reasons.

The urgent alert email and every page of the web app take their wording from here, so a
coordinator reads the same words in the mail and on the pages. This module imports nothing
from Flask, because the pipeline renders the alert with it.
"""

from __future__ import annotations

# Shown wherever a value was never recorded (no category, no status, no year group).
NOT_RECORDED = "Not recorded"

CATEGORY_LABELS = {
    "support_request": "Request for support (referral)",
    "school_notification": "School absence notification",
    "change_of_circumstances": "Change of circumstances",
    "query": "Query",
    "ehcp": "EHCP case (SEND team leads)",
    "action_update": "Update on a panel action",
    "parent_contact": "Parent or carer",
    "auto_reply": "Automatic reply",
    "bounce": "Delivery failure",
    "secure_message": "Secure message notice",
    "unrelated": "Not about a child",
}

CASE_STATUS_LABELS = {
    "open": "Open",
    "closed": "Closed",
    "send": "With the SEND team",
    "merged": "Merged into another case",
}

# What each risk reason code of the safeguarding screen (parsers/safeguarding.py) means.
RISK_LABELS = {
    "risk:safeguarding": "a safeguarding or child protection concern is mentioned",
    "risk:self_harm": "self-harm is mentioned",
    "risk:suicide": "suicide or a wish to die is mentioned",
    "risk:missing": "the child may be missing or nobody knows where they are",
    "risk:harm": "harm, abuse, neglect or exploitation is mentioned",
}


def _label(labels: dict[str, str], code: str | None) -> str:
    if not code:
        return NOT_RECORDED
    return labels.get(code, code.replace("_", " ").capitalize())


def category_label(code: str | None) -> str:
    """Return a message category in plain English, or "Not recorded" when there is none."""
    return _label(CATEGORY_LABELS, code)


def case_status_label(code: str | None) -> str:
    """Return a case status such as "send" in plain English ("With the SEND team")."""
    return _label(CASE_STATUS_LABELS, code)


def risk_label(code: str) -> str:
    """Return why the safeguarding screen flagged a message, as a short phrase.

    Accepts the code with or without its "risk:" prefix; an unknown code is shown as words.
    """
    full_code = code if code.startswith("risk:") else f"risk:{code}"
    return RISK_LABELS.get(full_code, full_code.removeprefix("risk:").replace("_", " "))
