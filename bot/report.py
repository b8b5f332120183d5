"""Printing what a poll did, one line per message, for people at a terminal."""

from __future__ import annotations

from bot.intake import PollSummary


def print_poll(summary: PollSummary) -> None:
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
        replies = ", ".join(item.replies) or "-"
        print(f"{name:<44} {outcome:<13} {category:<24} {case:<16} {replies}")
    print(f"\n{len(summary.processed)} messages; {summary.sent} further replies sent; "
          f"{summary.send_failures} waiting in the outbox")
