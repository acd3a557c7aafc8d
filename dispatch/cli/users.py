"""`yiwang users …` (accounts) and `yiwang db upgrade` (the PostgreSQL schema)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.core.access import Role, validate_scope
from dispatch.db import AccountStore, Database, DatabaseUnavailable, upgrade
from dispatch.db.accounts import AccountError
from dispatch.identity import Identity, import_roster, read_roster_csv
from dispatch.settings import Settings
from dispatch.store import Store


def _open(settings: Settings) -> tuple[Database, Identity]:
    db = Database(settings.database_url, max_size=1)
    upgrade(db)
    store = Store.from_url(settings.redis_url, settings.key_prefix)
    return db, Identity(AccountStore(db), store.sessions)


def _scope(settings: Settings, scope: str | None) -> str | None:
    if scope in (None, "", "*"):
        return None
    city = settings.city(datetime.now(ZoneInfo(settings.timezone)))
    return validate_scope(scope, city.areas if city else None)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise AccountError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    try:
        db, identity = _open(settings)
    except DatabaseUnavailable as exc:
        print(f"cannot reach PostgreSQL at YIWANG_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    now = time.time()
    try:
        if args.action == "add":
            account = identity.add(
                args.name, Role(args.role), _password(args), scope=_scope(settings, args.scope),
                officer=args.officer, display_name=args.display_name, now=now,
            )  # fmt: skip
            print(f"added {account.name} ({account.role.value}, scope {account.scope or '*'})")
        elif args.action == "import":
            count = import_roster(identity, read_roster_csv(args.file), now=now)
            print(f"imported {count} accounts from {args.file}")
        elif args.action in ("disable", "enable"):
            identity.change(args.name, disabled=args.action == "disable", by="cli", now=now)
            print(f"{args.name} {args.action}d; its sessions ended")
        elif args.action == "passwd":
            identity.set_password(args.name, _password(args), by="cli", now=now)
            print(f"password of {args.name} changed; its sessions ended")
        elif args.action == "token":
            token, secret = identity.accounts.issue_token(args.name, args.label)
            print(f"token {token.id} for {args.name} (shown once):\ntoken: {secret}")
        elif args.action == "revoke-token":
            identity.accounts.revoke_token(args.token_id)
            print(f"token {args.token_id} revoked")
        else:
            for account in identity.accounts.list():
                flags = " (disabled)" if account.disabled else ""
                print(
                    f"{account.name:<20} {account.role.value:<11} {account.scope or '*':<12} "
                    f"{account.display_name}{flags}"
                )
    except (AccountError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url, max_size=1)
    try:
        applied = upgrade(db)
    except DatabaseUnavailable as exc:
        print(f"cannot reach PostgreSQL at YIWANG_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print("applied: " + ", ".join(applied) if applied else "the schema is up to date")
    return 0


def add_user_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="accounts: roles, area scopes, passwords, tokens")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an account (asks for its password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--scope", help="an area id (district, street or grid); default: all")
    add.add_argument("--officer", help="officer accounts: the roster officer id (default: name)")
    add.add_argument("--display-name", default="")
    imp = actions.add_parser(
        "import", help="add accounts from a CSV: name,role,password,scope,officer,display_name"
    )
    imp.add_argument("file", type=Path)
    for name, text in (
        ("disable", "disable an account; its sessions and feeds end within seconds"),
        ("enable", "enable a disabled account"),
        ("passwd", "set an account's password (asks for it); its sessions end"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
    for action in (add, actions.choices["passwd"]):
        action.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
    token = actions.add_parser("token", help="issue an API bearer token for an account")
    token.add_argument("name")
    token.add_argument("--label", default="")
    revoke = actions.add_parser("revoke-token", help="revoke an API token by its id")
    revoke.add_argument("token_id")
    actions.add_parser("list", help="print every account")
    users.set_defaults(func=cmd_users)

    db = commands.add_parser("db", help="the PostgreSQL schema")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_actions.add_parser("upgrade", help="apply the schema migrations that are missing")
    db.set_defaults(func=cmd_db)
