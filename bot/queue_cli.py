"""`ccas-bot queue`: the messages waiting for a person, urgent first, for a terminal."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Message


def register(commands) -> None:
    queue = commands.add_parser(
        "queue", help="list the messages that need a person, urgent first, then oldest first",
        description="Shows ids, categories, cases and reason codes; open the message in the store "
                    "(or the web app, when it is running) to read it.")
    queue.add_argument("--limit", type=int, default=50, help="how many messages to list (default 50)")
    queue.set_defaults(handler=_queue)


def _queue(args) -> int:
    from bot.app import open_store
    from bot.cli import load

    store = open_store(load(args))
    with Session(store.engine) as session:
        rows = session.scalars(
            select(Message).where(Message.outcome == "needs_person")
            .order_by(Message.urgent.desc(), Message.received_at).limit(args.limit)).all()

    if not rows:
        print("No messages need a person.")
        return 0
    print(f"{'id':>6}  {'reference':<12}  {'received (UTC)':<16}  {'urgent':<6}  {'category':<24}  {'case':<16}  why")
    for row in rows:
        reasons = ", ".join(r for r in row.reasons or [] if r.startswith(("review:", "risk:", "message:", "bug:")))
        print(f"{row.id:>6}  {row.sha256[:12]:<12}  {row.received_at:%Y-%m-%d %H:%M}  {'yes' if row.urgent else '':<6}  "
              f"{row.category or '(unreadable)':<24}  {row.case_id or '-':<16}  {reasons}")
    return 0
