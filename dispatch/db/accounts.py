"""Accounts, API tokens and the access audit in PostgreSQL.

Only password hashes and token digests are stored; what they hash is known to its owner alone.
Times are stored as timestamptz (UTC) and passed in and out as epoch seconds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg

from dispatch.core.access import Role
from dispatch.db.database import Database


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    scope: str | None
    officer: str | None
    display_name: str
    password_hash: str
    disabled: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Account:
        return cls(
            row["name"],
            Role(row["role"]),
            row["scope"],
            row["officer"],
            row["display_name"],
            row["password_hash"],
            row["disabled_at"] is not None,
        )

    def public(self) -> dict[str, Any]:
        """What the admin API and `yiwang users list` show: never the hash."""
        return {
            "name": self.name,
            "role": self.role.value,
            "scope": self.scope,
            "officer": self.officer,
            "display_name": self.display_name,
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    account: str
    label: str
    created_at: float
    revoked: bool


def token_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


_ACCOUNT_COLUMNS = "name, role, scope, officer, display_name, password_hash, disabled_at"


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        name: str,
        role: Role,
        password_hash: str,
        *,
        scope: str | None = None,
        officer: str | None = None,
        display_name: str = "",
    ) -> Account:
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "INSERT INTO account (name, role, scope, officer, display_name, password_hash)"
                    f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ACCOUNT_COLUMNS}",
                    (name, role.value, scope, officer, display_name, password_hash),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"account {name!r} exists already") from None
        except psycopg.errors.CheckViolation as exc:
            raise AccountError(_check_message(name, exc)) from None
        assert row is not None
        return Account.from_row(row)

    def get(self, name: str) -> Account | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM account WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None else Account.from_row(row)

    def list(self) -> list[Account]:
        with self.db.transaction() as conn:
            rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM account ORDER BY name").fetchall()
        return [Account.from_row(r) for r in rows]

    def update(self, name: str, **changes: Any) -> Account:
        """Change role, scope, officer, display_name or password_hash; `disabled` True/False."""
        allowed = {"role", "scope", "officer", "display_name", "password_hash", "disabled"}
        unknown = set(changes) - allowed
        if unknown:
            raise AccountError(f"cannot change {sorted(unknown)}")
        sets, values = [], []
        for column, value in changes.items():
            if column == "disabled":
                sets.append("disabled_at = CASE WHEN %s THEN now() END")
            elif column == "password_hash":
                sets.append("password_hash = %s, password_changed_at = now()")
            else:
                sets.append(f"{column} = %s")
            values.append(value.value if isinstance(value, Role) else value)
        if not sets:
            raise AccountError("nothing to change")
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    f"UPDATE account SET {', '.join(sets)} WHERE name = %s"
                    f" RETURNING {_ACCOUNT_COLUMNS}",
                    (*values, name),
                ).fetchone()
        except psycopg.errors.CheckViolation as exc:
            raise AccountError(_check_message(name, exc)) from None
        if row is None:
            raise AccountError(f"no account {name!r}")
        return Account.from_row(row)

    # API tokens -------------------------------------------------------------------------

    def issue_token(self, account: str, label: str = "") -> tuple[ApiToken, str]:
        """A new token for `account`: its record and the secret, shown once."""
        token_id = f"tok_{secrets.token_hex(4)}"
        secret = f"yw_{secrets.token_urlsafe(32)}"
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "INSERT INTO api_token (id, digest, account, label) VALUES (%s, %s, %s, %s)"
                    " RETURNING id, account, label, created_at, revoked_at",
                    (token_id, token_digest(secret), account, label),
                ).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise AccountError(f"no account {account!r}") from None
        assert row is not None
        return _token(row), secret

    def token_account(self, secret: str) -> tuple[str, Account] | None:
        """(token id, its account) for a live token of an enabled account, else None."""
        with self.db.transaction() as conn:
            row = conn.execute(
                f"SELECT t.id AS token_id, {', '.join('a.' + c for c in _columns())}"
                " FROM api_token t JOIN account a ON a.name = t.account"
                " WHERE t.digest = %s AND t.revoked_at IS NULL"
                " AND (t.expires_at IS NULL OR t.expires_at > now())",
                (token_digest(secret),),
            ).fetchone()
        if row is None:
            return None
        account = Account.from_row(row)
        return (row["token_id"], account) if not account.disabled else None

    def token_holder(self, token_id: str) -> Account | None:
        """The enabled account a live token belongs to, None if revoked or disabled."""
        with self.db.transaction() as conn:
            row = conn.execute(
                f"SELECT {', '.join('a.' + c for c in _columns())}"
                " FROM api_token t JOIN account a ON a.name = t.account"
                " WHERE t.id = %s AND t.revoked_at IS NULL AND a.disabled_at IS NULL",
                (token_id,),
            ).fetchone()
        return None if row is None else Account.from_row(row)

    def tokens(self, account: str | None = None) -> list[ApiToken]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, account, label, created_at, revoked_at FROM api_token"
                " WHERE %(account)s::text IS NULL OR account = %(account)s ORDER BY created_at",
                {"account": account},
            ).fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> ApiToken:
        with self.db.transaction() as conn:
            row = conn.execute(
                "UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
                " RETURNING id, account, label, created_at, revoked_at",
                (token_id,),
            ).fetchone()
        if row is None:
            raise AccountError(f"no token {token_id!r}")
        return _token(row)

    # The access audit ---------------------------------------------------------------------

    def audit(
        self,
        at: float,
        action: str,
        *,
        account: str | None,
        role: str | None = None,
        address: str = "",
        target: str = "",
        detail: str = "",
    ) -> None:
        # The audit never refuses a record: text PostgreSQL cannot hold (NUL) is marked instead.
        fields = [_storable(v) for v in (account, role, address, action, target, detail)]
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO access_audit (at, account, role, address, action, target, detail)"
                " VALUES (to_timestamp(%s), %s, %s, %s, %s, %s, %s)",
                (at, *fields),
            )

    def audit_records(
        self,
        *,
        account: str | None = None,
        target: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered by actor, target (an incident, an account) and time."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, extract(epoch FROM at)::float8 AS at, account, role, address,"
                " action, target, detail FROM access_audit"
                " WHERE (%(account)s::text IS NULL OR account = %(account)s)"
                " AND (%(target)s::text IS NULL OR target = %(target)s)"
                " AND (%(since)s::float8 IS NULL OR at >= to_timestamp(%(since)s))"
                " AND (%(until)s::float8 IS NULL OR at < to_timestamp(%(until)s))"
                " ORDER BY at DESC, id DESC LIMIT %(limit)s",
                {
                    "account": account,
                    "target": target,
                    "since": since,
                    "until": until,
                    "limit": limit,
                },
            ).fetchall()
        return list(rows)


def _storable(value: str | None) -> str | None:
    return None if value is None else str(value).replace("\x00", "\ufffd")


def _columns() -> list[str]:
    return [c.strip() for c in _ACCOUNT_COLUMNS.split(",")]


def _token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(
        row["id"],
        row["account"],
        row["label"],
        row["created_at"].timestamp(),
        row["revoked_at"] is not None,
    )


def _check_message(name: str, exc: psycopg.errors.CheckViolation) -> str:
    constraint = exc.diag.constraint_name or ""
    if "name" in constraint:
        return f"account name {name!r}: use 1–64 letters, digits, '_', '.', '@' or '-'"
    if constraint == "account_check":
        return f"account {name!r}: an officer account needs --officer (the roster officer id)"
    return f"account {name!r}: {exc.diag.message_primary}"
