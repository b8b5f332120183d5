"""The dashboard (home page), the audit log and the users page."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from bot.labels import case_status_label, category_label
from bot.web import charts
from bot.web.common import current_user, get_accounts, get_config, role_required
from store.accounts import ROLES, AccountError

bp = Blueprint("admin", __name__)

AUDIT_PAGE_SIZE = 50
# Highest page number asked of the store; a larger one in the URL shows this (empty) page.
MAX_AUDIT_PAGE = 1_000_000
MIN_PASSWORD_LENGTH = 12

ROLE_NAMES = {"coordinator": "Coordinator", "panel_member": "Panel member", "admin": "Administrator"}


def _category_name(category: str) -> str:
    return "Unreadable" if category == "unreadable" else category_label(category)


@bp.route("/")
def dashboard():
    config = get_config()
    zone = ZoneInfo(config.bot.timezone)
    today = datetime.now(zone).date()
    stats = get_accounts().dashboard_stats(today, config.bot.timezone,
                                           review_interval_weeks=config.panel.review_interval_weeks)
    week_labels = [f"{week.day} {week:%b}" for week in stats.weeks]
    first, last = stats.weeks[0], stats.weeks[-1]
    period = f"the 12 weeks from {first.day} {first:%B %Y} to the week starting {last.day} {last:%B %Y}"

    messages_chart = charts.column_chart(
        "chart-messages", "Messages per week by category",
        f"Stacked columns: messages received in each week of {period}, split by the category the bot gave them. "
        "The same figures are in the table below the chart.",
        week_labels, [(_category_name(name), stats.messages[name]) for name in stats.categories
                      if name in stats.messages])
    referrals_chart = charts.column_chart(
        "chart-referrals", "New referrals and new cases per week",
        f"Stacked columns: support requests received and cases opened in each week of {period}. "
        "The same figures are in the table below the chart.",
        week_labels, [("Support requests", stats.referrals), ("New cases", stats.new_cases)])
    status_items = [(case_status_label(status), count)
                    for status, count in stats.cases_by_status.items()]
    status_chart = charts.bar_chart(
        "chart-status", "Cases not closed, by status",
        "Bars: " + (", ".join(f"{label} {count}" for label, count in status_items) or "no cases") + ".",
        status_items)
    review_labels = ["Overdue"] + [f"{week.day} {week:%b}" for week in stats.review_weeks]
    review_chart = charts.column_chart(
        "chart-reviews", "Panel reviews due",
        f"Columns: {stats.reviews_overdue} open cases overdue for review, then the reviews due in each of the "
        f"next {len(stats.review_weeks)} weeks. The same figures are in the table below the chart.",
        review_labels, [("Reviews", [stats.reviews_overdue, *stats.reviews_due])])
    rate_items = [(_category_name(name), round(stats.correction_rate(name), 1)) for name in stats.categories
                  if stats.correction_rate(name) is not None]
    corrections_chart = charts.bar_chart(
        "chart-corrections", "Corrections per 100 messages, by category",
        f"Bars: how often coordinators corrected the bot's work on messages of each category, over {period}. "
        "The counts are in the table below the chart.",
        rate_items, unit="%")

    return render_template(
        "admin/dashboard.html", stats=stats, week_labels=week_labels, review_labels=review_labels,
        category_name=_category_name, status_items=status_items, messages_chart=messages_chart,
        referrals_chart=referrals_chart, status_chart=status_chart, review_chart=review_chart,
        corrections_chart=corrections_chart)


@bp.route("/audit")
@role_required("coordinator")
def audit_log():
    filters = {name: request.args.get(name, "").strip() for name in ("actor", "action", "target")}
    try:
        page_number = min(max(1, int(request.args.get("page", "1"))), MAX_AUDIT_PAGE)
    except ValueError:
        page_number = 1
    accounts = get_accounts()
    page = accounts.list_audit(**filters, page=page_number, per_page=AUDIT_PAGE_SIZE)
    zone = ZoneInfo(get_config().bot.timezone)
    return render_template("admin/audit_log.html", page=page, filters=filters, actions=accounts.audit_actions(),
                           zone=zone, page_url=lambda number: url_for("admin.audit_log", **filters, page=number))


# Users -----------------------------------------------------------------------------

@bp.route("/users")
@role_required("admin")
def users():
    return render_template("admin/users.html", users=get_accounts().list_users(), roles=ROLES,
                           role_names=ROLE_NAMES, errors={}, form={})


@bp.route("/users", methods=["POST"])
@role_required("admin")
def add_user():
    form = {name: request.form.get(name, "").strip() for name in ("username", "display_name", "role")}
    password = request.form.get("password", "")
    errors = {}
    if not form["username"]:
        errors["username"] = "Enter a username, such as the person's work email address"
    elif any(ch.isspace() for ch in form["username"]):
        errors["username"] = "A username cannot contain spaces"
    if form["role"] not in ROLES:
        errors["role"] = "Select a role"
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Enter a password of at least {MIN_PASSWORD_LENGTH} characters"
    if not errors:
        try:
            account = get_accounts().add_user(current_user().username, form["username"], form["role"],
                                              display_name=form["display_name"], password=password)
        except AccountError:
            errors["username"] = "An account with this username already exists"
        else:
            flash(f"Added {account.username} as {ROLE_NAMES[account.role].lower()}.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/users.html", users=get_accounts().list_users(), roles=ROLES,
                           role_names=ROLE_NAMES, errors=errors, form=form), 400


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@role_required("admin")
def change_role(user_id: int):
    account = _other_account(user_id)
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400)
    get_accounts().set_role(current_user().username, account.username, role)
    flash(f"{account.username} is now {ROLE_NAMES[role].lower()}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@role_required("admin")
def change_active(user_id: int):
    account = _other_account(user_id)
    active = request.form.get("active") == "1"
    get_accounts().set_active(current_user().username, account.username, active)
    flash(f"{'Enabled' if active else 'Disabled'} {account.username}.", "success")
    return redirect(url_for("admin.users"))


def _role_items(roles, role_names: dict[str, str], chosen: str) -> list[dict]:
    """Return govukSelect and govukRadios items for the roles, with `chosen` selected."""
    return [{"value": role, "text": role_names[role], "selected": role == chosen, "checked": role == chosen}
            for role in roles]


@bp.app_context_processor
def _users_page_helpers() -> dict:
    return {"role_items": _role_items}


def _other_account(user_id: int):
    """Return the account to change; an admin cannot change their own role or disable themselves."""
    account = get_accounts().get_user(user_id)
    if account is None:
        abort(404)
    if account.id == current_user().id:
        flash("You cannot change your own account here. Ask another administrator, "
              "or use `ccas-bot users` on the server.", "error")
        abort(redirect(url_for("admin.users")))
    return account
