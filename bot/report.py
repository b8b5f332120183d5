"""Printing what a poll did, one line per message, for people at a terminal."""

from __future__ import annotations

from bot.intake import PollSummary


PURPOSE_LABELS = {
    "professional_acknowledgement": "acknowledgement",
    "personal_acknowledgement": "acknowledgement (no case details)",
    "school_portal_pointer": "portal reply to school",
    "professional_send_notice": "SEND notice to sender",
    "forward_to_send": "forward to SEND",
    "duty_urgent_alert": "urgent alert to duty",
    "lead_professional_parent_notice": "notice to lead professional",
}


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def print_poll(summary: PollSummary) -> None:
    """Print one line per message. Replies are shown by kind, not address, because this
    output may end up in a service journal."""
    header = f"{'message':<44} {'outcome':<13} {'category':<24} {'case':<16} replies"
    print(header)
    print("-" * len(header))
    for item in summary.processed:
        name = item.ref.uid if len(item.ref.uid) <= 44 else "…" + item.ref.uid[-43:]
        outcome = item.stored.outcome if item.stored else "not stored"
        category = "(finished earlier)" if item.resumed else "(unreadable)"
        if item.triage and item.triage.classification:
            category = item.triage.classification.category
        case = (item.stored.case_id if item.stored else None) or "-"
        replies = ", ".join(PURPOSE_LABELS.get(p, p) for p in item.reply_purposes)
        held_labels = ", ".join(PURPOSE_LABELS.get(p, p) for p in item.held_purposes)
        if held_labels:
            replies = f"{replies}; held for approval: {held_labels}" if replies else f"held for approval: {held_labels}"
        replies = replies or "-"
        print(f"{name:<44} {outcome:<13} {category:<24} {case:<16} {replies}")
    written = sum(len(item.reply_purposes) for item in summary.processed) + summary.sent
    held_count = sum(len(item.held_purposes) for item in summary.processed)
    print(f"\n{_plural(len(summary.processed), 'message', 'messages')}; "
          f"{_plural(written, 'reply', 'replies')} sent; "
          f"{_plural(held_count, 'reply', 'replies')} held as drafts for a coordinator to approve; "
          f"{_plural(summary.send_failures, 'reply', 'replies')} waiting in the outbox to be retried")
