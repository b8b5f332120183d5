"""`ccas-bot users`: the web app's local accounts (add, list, disable, enable, set-role, set-password)."""

from __future__ import annotations

import getpass
import os
import sys

from bot.errors import ConfigError
from store.accounts import ROLES, AccountError, AccountStore

# The person at the terminal is recorded as the actor of account changes made here.
CLI_ACTOR = "cli"

MIN_PASSWORD_LENGTH = 12


def register(commands) -> None:
    users = commands.add_parser("users", help="manage the web app's accounts",
                                description="Add, list, disable and change the role of web app accounts. "
                                            "Passwords are stored as argon2 hashes.")
    actions = users.add_subparsers(required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a local account; prompts for the password twice")
    add.add_argument("username", help="the name the person signs in with, such as their work email address")
    add.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add.add_argument("--name", default="", help="the name shown in the web app (default: the username)")
    add.add_argument("--password-env", metavar="VAR",
                     help="read the password from this environment variable instead of prompting")
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="list the accounts with their roles and last sign-in")
    listing.set_defaults(handler=_list)

    disable = actions.add_parser("disable", help="stop an account signing in; its sessions end at once")
    disable.add_argument("username")
    disable.set_defaults(handler=_set_active, active=False)

    enable = actions.add_parser("enable", help="let a disabled account sign in again")
    enable.add_argument("username")
    enable.set_defaults(handler=_set_active, active=True)

    set_role = actions.add_parser("set-role", help="change an account's role")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=ROLES)
    set_role.set_defaults(handler=_set_role)

    set_password = actions.add_parser("set-password", help="set a new password; prompts for it twice")
    set_password.add_argument("username")
    set_password.add_argument("--password-env", metavar="VAR",
                              help="read the password from this environment variable instead of prompting")
    set_password.set_defaults(handler=_set_password)


def _accounts(args) -> AccountStore:
    from bot.app import open_store
    from bot.cli import load

    return AccountStore(open_store(load(args)))


def _add(args) -> int:
    accounts = _accounts(args)
    password = _read_password(args.password_env)
    try:
        account = accounts.add_user(CLI_ACTOR, args.username, args.role, display_name=args.name, password=password)
    except AccountError as error:
        print(f"ccas-bot: {error}", file=sys.stderr)
        return 1
    print(f"Added {account.username} as {account.role}.")
    return 0


def _list(args) -> int:
    rows = _accounts(args).list_users()
    if not rows:
        print("No accounts. Add one with `ccas-bot users add USERNAME --role admin`.")
        return 0
    print(f"{'username':<32}  {'role':<12}  {'status':<8}  {'sign-in':<14}  last sign-in (UTC)")
    for row in rows:
        methods = "+".join(name for name, used in (("password", row.local_password), ("entra", row.oidc)) if used)
        last = f"{row.last_sign_in_at:%Y-%m-%d %H:%M}" if row.last_sign_in_at else "never"
        print(f"{row.username:<32}  {row.role:<12}  {'active' if row.active else 'disabled':<8}  "
              f"{methods or '-':<14}  {last}")
    return 0


def _set_active(args) -> int:
    accounts = _accounts(args)
    return _change(lambda: accounts.set_active(CLI_ACTOR, args.username, args.active),
                   "Enabled {}." if args.active else "Disabled {}.")


def _set_role(args) -> int:
    accounts = _accounts(args)
    return _change(lambda: accounts.set_role(CLI_ACTOR, args.username, args.role), "{} is now " + args.role + ".")


def _set_password(args) -> int:
    accounts = _accounts(args)
    password = _read_password(args.password_env)
    return _change(lambda: accounts.set_password(CLI_ACTOR, args.username, password), "Set a new password for {}.")


def _change(change, done: str) -> int:
    """Run one account change; print `done` with the username, or the reason it failed."""
    try:
        account = change()
    except AccountError as error:
        print(f"ccas-bot: {error}", file=sys.stderr)
        return 1
    print(done.format(account.username))
    return 0


def _read_password(env_name: str | None) -> str:
    """Return the new password from the environment variable, or from two prompts that must agree."""
    if env_name:
        password = os.environ.get(env_name, "")
        if not password:
            raise ConfigError("", f"environment variable {env_name} (named by --password-env) is not set or is empty",
                              f"put the password in {env_name}, or leave out --password-env to be prompted")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ConfigError("", "the two passwords do not match", "run the command again")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError("", f"password is shorter than {MIN_PASSWORD_LENGTH} characters",
                          "use a longer passphrase, such as three or four unrelated words")
    return password
