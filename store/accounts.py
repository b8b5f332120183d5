"""Web app accounts, sign-in attempts and the audit log.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher defaults). Every change to
an account writes an audit event in the same transaction. Rate-limit keys arrive already
hashed, so neither account names nor client addresses are stored for failed sign-ins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.agenda import as_utc, review_due_on
from store.audit import add_audit
from store.models import AuditEvent, Case, Correction, Message, SignInAttempt, UserAccount
from store.records import Store

# The web app's roles. An admin may do everything a coordinator may, and also manages users;
# a panel member may only read.
ROLES = ("coordinator", "panel_member", "admin")
# Changes to an account that end every session it had begun before them.
SESSION_ENDING_ACTIONS = ("user_disabled", "user_password_set")

# Checked in place of a real hash when the account does not exist, so that a sign-in with an
# unknown name takes as long as one with a wrong password.
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("no account has this password")


class AccountError(ValueError):
    """A change to an account that cannot be made, such as a duplicate or unknown username."""


@dataclass(frozen=True)
class AccountView:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    local_password: bool
    oidc: bool
    created_at: datetime
    last_sign_in_at: datetime | None


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of checking a password: the account (when it exists) and whether it may sign in."""

    account: AccountView | None
    password_ok: bool


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class DashboardStats:
    """The dashboard's figures. Weeks start on Monday in the bot's timezone, oldest first."""

    weeks: list[date]
    # Messages per week by the category the bot gave them ("unreadable" when it gave none).
    messages: dict[str, list[int]]
    # Support requests (new referrals) and newly opened cases per week.
    referrals: list[int]
    new_cases: list[int]
    # Corrections per week, counted against the category the bot had given the message.
    corrections: dict[str, list[int]]
    # Cases that are not closed, by status; and how many are closed.
    cases_by_status: dict[str, int]
    closed_cases: int
    # Reviews of open cases due in each coming week (review_weeks starts with this week).
    review_weeks: list[date]
    reviews_due: list[int]
    reviews_overdue: int
    reviews_without_date: int
    categories: list[str] = field(default_factory=list)

    def message_total(self, category: str) -> int:
        return sum(self.messages.get(category, []))

    def correction_total(self, category: str) -> int:
        return sum(self.corrections.get(category, []))

    def correction_rate(self, category: str) -> float | None:
        """Corrections per 100 messages of the category over the weeks shown, or None without messages."""
        messages = self.message_total(category)
        return 100 * self.correction_total(category) / messages if messages else None


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def normalise_username(username: str) -> str:
    return username.strip().lower()


class AccountStore:
    """Accounts, sign-in attempts and audit events on top of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Accounts -----------------------------------------------------------------

    def add_user(self, actor: str, username: str, role: str, *, display_name: str = "",
                 password: str | None = None, password_hash: str = "",
                 oidc_subject: str | None = None) -> AccountView:
        """Create an account; raise AccountError when the username is taken or the role unknown.

        Give either `password` or an argon2 `password_hash` made by hash_password (tests reuse
        one), or neither for an account that signs in through Entra ID only.
        """
        username = normalise_username(username)
        _check_role(role)
        if not username or any(ch.isspace() for ch in username):
            raise AccountError("a username must be non-empty and contain no spaces")
        if password:
            password_hash = hash_password(password)

        def work(session: Session):
            if session.scalars(select(UserAccount).where(UserAccount.username == username)).first():
                raise AccountError(f"an account named {username!r} already exists")
            row = UserAccount(username=username, display_name=display_name.strip() or username, role=role,
                              password_hash=password_hash, oidc_subject=oidc_subject, active=True,
                              created_at=_now())
            session.add(row)
            session.flush()
            add_audit(session, actor, "user_added", target_type="user_account", target_id=row.id,
                      detail={"role": role, "local_password": bool(password_hash)})
            return _view(row)
        return self.store._write(work)

    def list_users(self) -> list[AccountView]:
        return self.store._read(lambda session: [
            _view(row) for row in session.scalars(select(UserAccount).order_by(UserAccount.username))])

    def get_user(self, user_id: int) -> AccountView | None:
        def work(session: Session):
            row = session.get(UserAccount, user_id)
            return _view(row) if row else None
        return self.store._read(work)

    def find_user(self, username: str) -> AccountView | None:
        def work(session: Session):
            row = _by_username(session, normalise_username(username))
            return _view(row) if row else None
        return self.store._read(work)

    def set_role(self, actor: str, username: str, role: str) -> AccountView:
        _check_role(role)

        def work(session: Session):
            row = _require(session, username)
            if row.role != role:
                add_audit(session, actor, "user_role_changed", target_type="user_account", target_id=row.id,
                          detail={"from": row.role, "to": role})
                row.role = role
            return _view(row)
        return self.store._write(work)

    def set_active(self, actor: str, username: str, active: bool) -> AccountView:
        """Enable or disable an account; a disabled account's sessions end at their next request."""
        def work(session: Session):
            row = _require(session, username)
            if row.active != active:
                row.active = active
                add_audit(session, actor, "user_enabled" if active else "user_disabled",
                          target_type="user_account", target_id=row.id)
            return _view(row)
        return self.store._write(work)

    def set_password(self, actor: str, username: str, password: str) -> AccountView:
        password_hash = hash_password(password)

        def work(session: Session):
            row = _require(session, username)
            row.password_hash = password_hash
            add_audit(session, actor, "user_password_set", target_type="user_account", target_id=row.id)
            return _view(row)
        return self.store._write(work)

    # Sign-in ------------------------------------------------------------------

    def check_password(self, username: str, password: str) -> PasswordCheck:
        """Verify a password, rehashing it when the argon2 parameters have changed since it was hashed.

        An unknown or password-less account is checked against a dummy hash, so the time taken
        does not tell whether the account exists.
        """
        username = normalise_username(username)
        row = self.store._read(lambda session: _by_username(session, username))
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
            verified = stored is not _DUMMY_HASH
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            verified = False
        if verified and _hasher.check_needs_rehash(stored):
            new_hash = _hasher.hash(password)

            def rehash(session: Session):
                session.get(UserAccount, row.id).password_hash = new_hash
            self.store._write(rehash)
        return PasswordCheck(account=_view(row) if row else None, password_ok=verified)

    def record_sign_in(self, user_id: int, method: str, at: datetime | None = None) -> AccountView:
        """Record a successful sign-in ("password" or "oidc") and return the account."""
        at = at or _now()

        def work(session: Session):
            row = session.get(UserAccount, user_id)
            row.last_sign_in_at = at
            add_audit(session, row.username, "sign_in", target_type="user_account", target_id=row.id,
                      detail={"method": method}, at=at)
            return _view(row)
        return self.store._write(work)

    def record_sign_in_failure(self, keys: Sequence[str], reason: str, *, account_id: int | None = None,
                               actor: str = "unknown", at: datetime | None = None) -> None:
        """Count a failed sign-in against each hashed key and audit it; the password is never stored."""
        at = at or _now()

        def work(session: Session):
            for key in keys:
                session.add(SignInAttempt(key=key, at=at))
            add_audit(session, actor, "sign_in_failed", target_type="user_account",
                      target_id=account_id if account_id is not None else "", detail={"reason": reason}, at=at)
        self.store._write(work)

    def reserve_attempts(self, keys: Sequence[str], at: datetime | None = None) -> list[int]:
        """Count a sign-in attempt against each hashed key before its password is checked.

        Counting first means that attempts made at the same moment each see the others, so
        they cannot all pass the limit together. `release_attempts` takes back the rows of
        an attempt that succeeded or was refused without a check.
        """
        at = at or _now()

        def work(session: Session):
            rows = [SignInAttempt(key=key, at=at) for key in keys]
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]
        return self.store._write(work)

    def release_attempts(self, attempt_ids: Sequence[int]) -> None:
        ids = list(attempt_ids)
        if ids:
            self.store._write(lambda session: session.execute(delete(SignInAttempt).where(SignInAttempt.id.in_(ids))))

    def count_failures(self, keys: Iterable[str], since: datetime) -> dict[str, int]:
        """Return the failed sign-ins per hashed key since `since`."""
        keys = list(keys)

        def work(session: Session):
            rows = session.execute(select(SignInAttempt.key, func.count()).where(
                SignInAttempt.key.in_(keys), SignInAttempt.at >= since).group_by(SignInAttempt.key))
            counts = dict.fromkeys(keys, 0)
            counts.update({key: count for key, count in rows})
            return counts
        return self.store._read(work)

    def clear_failures(self, key: str, older_than: datetime) -> None:
        """Forget the failures counted against `key`, and every failure older than `older_than`."""
        self.store._write(lambda session: session.execute(delete(SignInAttempt).where(
            (SignInAttempt.key == key) | (SignInAttempt.at < older_than))))

    def oidc_account(self, subject: str, username: str, display_name: str, role: str) -> AccountView:
        """Find the account of an Entra ID user by its `oid` subject, creating or updating it.

        The role comes from the ID token at every sign-in, so a change made in Entra ID takes
        effect at the user's next sign-in. A disabled account stays disabled.
        """
        _check_role(role)
        username = normalise_username(username) or subject

        def work(session: Session):
            row = session.scalars(select(UserAccount).where(UserAccount.oidc_subject == subject)).first()
            if row is None:
                existing = _by_username(session, username)
                if existing is not None and existing.oidc_subject is None and not existing.password_hash:
                    # An account an admin prepared for this person, with no password: link it.
                    row = existing
                    row.oidc_subject = subject
                else:
                    # A local account with a password keeps its name; the Entra ID account gets its own.
                    new_username = f"{username}#{subject[:8]}" if existing is not None else username
                    row = UserAccount(username=new_username, display_name=display_name or username, role=role,
                                      password_hash="", oidc_subject=subject, active=True, created_at=_now())
                    session.add(row)
                    session.flush()
                    add_audit(session, "oidc", "user_added", target_type="user_account", target_id=row.id,
                              detail={"role": role, "local_password": False})
            if row.role != role:
                add_audit(session, "oidc", "user_role_changed", target_type="user_account", target_id=row.id,
                          detail={"from": row.role, "to": role})
                row.role = role
            if display_name and row.display_name != display_name:
                row.display_name = display_name
            return _view(row)
        return self.store._write(work)

    def session_account(self, user_id: int, signed_in_at: datetime) -> AccountView | None:
        """Return the account behind a session, or None when the session no longer counts.

        A session ends when its account is disabled or gone, or when, after the session
        began, the user signed out (anywhere), the account was disabled (even if enabled
        again since) or its password was changed.
        """
        def work(session: Session):
            row = session.get(UserAccount, user_id)
            if row is None or not row.active:
                return None
            signed_out = session.scalar(select(func.max(AuditEvent.at)).where(
                ((AuditEvent.actor == row.username) & (AuditEvent.action == "sign_out"))
                | ((AuditEvent.target_type == "user_account") & (AuditEvent.target_id == str(row.id))
                   & AuditEvent.action.in_(SESSION_ENDING_ACTIONS))))
            if signed_out is not None and as_utc(signed_out) >= signed_in_at:
                return None
            return _view(row)
        return self.store._read(work)

    # Audit log ----------------------------------------------------------------

    def add_event(self, actor: str, action: str, *, target_type: str = "", target_id: str | int = "",
                  detail: dict | None = None) -> None:
        """Write one audit event in its own transaction (a sign-out, or a page view)."""
        self.store._write(lambda session: add_audit(session, actor, action, target_type=target_type,
                                                    target_id=target_id, detail=detail))

    def list_audit(self, *, actor: str = "", action: str = "", target: str = "", page: int = 1,
                   per_page: int = 50) -> AuditPage:
        """Return one page of audit events, newest first; `target` matches the target id or type."""
        page = max(1, page)

        def work(session: Session):
            query = select(AuditEvent)
            if actor:
                query = query.where(AuditEvent.actor == actor.strip().lower())
            if action:
                query = query.where(AuditEvent.action == action.strip())
            if target:
                target_type, _, target_id = target.strip().partition(":")
                if target_id:
                    query = query.where(AuditEvent.target_type == target_type, AuditEvent.target_id == target_id)
                else:
                    query = query.where((AuditEvent.target_id == target_type) | (AuditEvent.target_type == target_type))
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            rows = session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                   .offset((page - 1) * per_page).limit(per_page))
            return AuditPage(rows=[_audit_row(row) for row in rows], total=total, page=page, per_page=per_page)
        return self.store._read(work)

    def audit_actions(self) -> list[str]:
        """Return the distinct actions in the audit log, for the filter's choices."""
        return self.store._read(lambda session: list(session.scalars(
            select(AuditEvent.action).distinct().order_by(AuditEvent.action))))


    # Dashboard ----------------------------------------------------------------

    def dashboard_stats(self, today: date, timezone_name: str, *, weeks: int = 12, review_weeks: int = 8,
                        review_interval_weeks: int = 12) -> DashboardStats:
        """Count messages, referrals, new cases and corrections per week, cases by status and reviews due."""
        zone = ZoneInfo(timezone_name)
        this_week = today - timedelta(days=today.weekday())
        week_starts = [this_week - timedelta(weeks=weeks - 1 - index) for index in range(weeks)]
        since = datetime.combine(week_starts[0], datetime.min.time(), zone).astimezone(timezone.utc)

        def week_index(moment: datetime) -> int | None:
            local = as_utc(moment).astimezone(zone).date()
            index = (local - week_starts[0]).days // 7
            return index if 0 <= index < weeks else None

        def work(session: Session) -> DashboardStats:
            messages: dict[str, list[int]] = {}
            referrals = [0] * weeks
            for received_at, category, extracted in session.execute(
                    select(Message.received_at, Message.category, Message.extracted)
                    .where(Message.received_at >= since)):
                index = week_index(received_at)
                if index is None:
                    continue
                # Messages count under the bot's own category, as corrections do, so the correction
                # rate compares like with like. Referrals count under the category after any correction.
                bot_category = ((extracted or {}).get("bot_decision") or {}).get("category", category)
                messages.setdefault(bot_category or "unreadable", [0] * weeks)[index] += 1
                if category == "support_request":
                    referrals[index] += 1

            new_cases = [0] * weeks
            for (opened,) in session.execute(select(Case.opened).where(Case.opened >= week_starts[0])):
                index = (opened - week_starts[0]).days // 7
                if 0 <= index < weeks:
                    new_cases[index] += 1

            corrections: dict[str, list[int]] = {}
            for at, category in session.execute(
                    select(Correction.at, Correction.bot_category).where(Correction.at >= since)):
                index = week_index(at)
                if index is not None:
                    corrections.setdefault(category or "unreadable", [0] * weeks)[index] += 1

            statuses = Counter(dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all()))
            closed = statuses.pop("closed", 0)

            due = [0] * review_weeks
            overdue = undated = 0
            for case in session.scalars(select(Case).where(Case.status == "open")):
                due_on = review_due_on(case, review_interval_weeks)
                if due_on is None:
                    undated += 1
                elif due_on < today:
                    overdue += 1
                elif (index := (due_on - this_week).days // 7) < review_weeks:
                    due[index] += 1

            categories = sorted(set(messages) | set(corrections),
                                key=lambda name: (-sum(messages.get(name, [])), name))
            return DashboardStats(
                weeks=week_starts, messages=messages, referrals=referrals, new_cases=new_cases,
                corrections=corrections, cases_by_status=dict(statuses.most_common()), closed_cases=closed,
                review_weeks=[this_week + timedelta(weeks=index) for index in range(review_weeks)],
                reviews_due=due, reviews_overdue=overdue, reviews_without_date=undated, categories=categories)
        return self.store._read(work)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def _by_username(session: Session, username: str) -> UserAccount | None:
    return session.scalars(select(UserAccount).where(UserAccount.username == username)).first()


def _require(session: Session, username: str) -> UserAccount:
    row = _by_username(session, normalise_username(username))
    if row is None:
        raise AccountError(f"no account named {normalise_username(username)!r}")
    return row


def _view(row: UserAccount) -> AccountView:
    return AccountView(id=row.id, username=row.username, display_name=row.display_name, role=row.role,
                       active=row.active, local_password=bool(row.password_hash), oidc=row.oidc_subject is not None,
                       created_at=as_utc(row.created_at),
                       last_sign_in_at=as_utc(row.last_sign_in_at) if row.last_sign_in_at else None)


def _audit_row(row: AuditEvent) -> AuditRow:
    return AuditRow(id=row.id, at=as_utc(row.at), actor=row.actor, action=row.action, target_type=row.target_type,
                    target_id=row.target_id, detail=dict(row.detail or {}))


def _now() -> datetime:
    return datetime.now(timezone.utc)
