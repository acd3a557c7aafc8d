"""Identity: passwords, logins with throttling, page sessions, API tokens, and what an
authenticated caller is (a `Principal`).

Accounts live in PostgreSQL, sessions and throttling counters in Redis. A login is refused
while its account or its address is locked out, even with the right password, and every
login, failure, logout and account change goes to the access audit.
"""

from __future__ import annotations

import csv
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dispatch.core.access import Principal, Role, parse_role
from dispatch.core.roster import OfficerId
from dispatch.db import Account, AccountStore
from dispatch.db.accounts import AccountError
from dispatch.store import SessionStore
from dispatch.store.sessions import session_digest
from gis.areas import AreaId

_HASHER = PasswordHasher()
# Verifying against this keeps a login for an unknown account as slow as for a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

MIN_PASSWORD = 10


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Throttling and session lifetimes (the defaults suit a 12-hour duty shift)."""

    account_failures: int = 5  # failures within the window that lock an account
    address_failures: int = 30  # ... and an address trying many accounts
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60
    session_idle_s: float = 30 * 60
    session_absolute_s: float = 12 * 3600
    requests_per_minute: int = 1200  # per account; a console polls far less than this


class LoginRefusedError(Exception):
    """A login that did not succeed; the message is safe to show (it never says which part
    of the credentials was wrong)."""

    def __init__(self, message: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"passwords need at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def principal_of(account: Account, address: str, credential: str) -> Principal:
    return Principal(
        account.name,
        account.role,
        AreaId(account.scope) if account.scope else None,
        OfficerId(account.officer) if account.officer else None,
        address,
        credential,
    )


class Identity:
    def __init__(
        self, accounts: AccountStore, sessions: SessionStore, policy: LoginPolicy | None = None
    ) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.policy = policy or LoginPolicy()

    # Logging in and out -----------------------------------------------------------------

    def login(self, name: str, password: str, address: str, *, now: float) -> tuple[str, Principal]:
        """A session token and who it is, or LoginRefusedError."""
        policy = self.policy
        for who in (f"acct:{name}", f"addr:{address}"):
            left = self.sessions.locked_for(who)
            if left > 0:
                self.accounts.audit(
                    now, "login_locked", account=name, address=address, detail=who.split(":")[0]
                )
                raise LoginRefusedError(
                    f"too many failed logins; try again in {left / 60:.0f} min",
                    retry_after_s=left,
                )
        account = self.accounts.get(name)
        if not _verify(account.password_hash if account else _DUMMY_HASH, password) or (
            account is None or account.disabled
        ):
            self.sessions.count_failure(
                f"acct:{name}",
                window_s=policy.window_s,
                limit=policy.account_failures,
                lockout_s=policy.lockout_s,
            )
            self.sessions.count_failure(
                f"addr:{address}",
                window_s=policy.window_s,
                limit=policy.address_failures,
                lockout_s=policy.lockout_s,
            )
            why = "disabled" if account is not None and account.disabled else "wrong credentials"
            self.accounts.audit(
                now, "login_failed", account=name if account else None, address=address,
                detail=why if account else f"unknown account {name[:64]!r}",
            )  # fmt: skip
            raise LoginRefusedError("wrong account name or password")
        self.sessions.clear_failures(f"acct:{name}")
        token = self.sessions.open(
            account.name,
            address,
            now=now,
            idle_s=policy.session_idle_s,
            absolute_s=policy.session_absolute_s,
        )
        self.accounts.audit(now, "login", account=account.name, role=account.role, address=address)
        return token, principal_of(account, address, f"session:{session_digest(token)}")

    def logout(self, principal: Principal, *, now: float) -> None:
        kind, _, handle = principal.credential.partition(":")
        if kind == "session":
            self.sessions.close(handle)
        self.record(principal, "logout", now=now)

    def record(
        self, principal: Principal, action: str, *, now: float, target: str = "", detail: str = ""
    ) -> None:
        """What an authenticated caller did (or was refused), in the access audit."""
        self.accounts.audit(
            now, action, account=principal.account, role=principal.role,
            address=principal.address, target=target, detail=detail,
        )  # fmt: skip

    # Who is calling -----------------------------------------------------------------------

    def from_session(self, token: str, address: str, *, now: float) -> Principal | None:
        record = self.sessions.touch(token, now=now, idle_s=self.policy.session_idle_s)
        if record is None:
            return None
        account = self.accounts.get(record.account)
        if account is None or account.disabled:
            self.sessions.close(record.digest)
            return None
        return principal_of(account, address, f"session:{record.digest}")

    def from_token(self, secret: str, address: str) -> Principal | None:
        found = self.accounts.token_account(secret)
        if found is None:
            return None
        token_id, account = found
        return principal_of(account, address, f"token:{token_id}")

    def still_valid(self, principal: Principal) -> bool:
        """Whether the credential a long-lived connection came with still holds."""
        kind, _, handle = principal.credential.partition(":")
        if kind == "session":
            return self.sessions.alive(handle)
        if kind == "token":
            # A token outlives a change of role or scope; what it was opened with does not.
            holder = self.accounts.token_holder(handle)
            return (
                holder is not None
                and principal_of(holder, principal.address, principal.credential) == principal
            )
        return False

    def within_budget(self, principal: Principal, *, now: float) -> bool:
        return self.sessions.spend(
            f"acct:{principal.account}",
            now=now,
            window_s=60,
            budget=self.policy.requests_per_minute,
        )

    # Managing accounts --------------------------------------------------------------------

    def add(
        self,
        name: str,
        role: Role,
        password: str,
        *,
        scope: str | None = None,
        officer: str | None = None,
        display_name: str = "",
        by: str = "cli",
        now: float,
    ) -> Account:
        if role is Role.OFFICER and not officer:
            officer = name
        account = self.accounts.add(
            name, role, hash_password(password), scope=scope, officer=officer,
            display_name=display_name,
        )  # fmt: skip
        self.accounts.audit(
            now, "account_created", account=by, target=name,
            detail=f"role={role.value} scope={scope or '*'}",
        )  # fmt: skip
        return account

    def set_password(self, name: str, password: str, *, by: str, now: float) -> None:
        self.accounts.update(name, password_hash=hash_password(password))
        ended = self.sessions.close_all(name)
        self.accounts.audit(
            now, "password_changed", account=by, target=name, detail=f"{ended} sessions ended"
        )

    def change(self, name: str, *, by: str, now: float, **changes: object) -> Account:
        account = self.accounts.update(name, **changes)
        detail = " ".join(f"{k}={v}" for k, v in changes.items())
        if changes.get("disabled") or "role" in changes or "scope" in changes:
            # What the account may see changed: its open sessions and feeds end now.
            detail += f"; {self.sessions.close_all(name)} sessions ended"
        self.accounts.audit(now, "account_changed", account=by, target=name, detail=detail)
        return account


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class RosterRow:
    name: str
    role: Role
    password: str
    scope: str | None
    officer: str | None
    display_name: str


def read_roster_csv(path: Path) -> list[RosterRow]:
    """Accounts from a CSV with a header: name, role, password, scope, officer, display_name
    (scope, officer and display_name may be empty). Errors name the row."""
    rows: list[RosterRow] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"name", "role", "password"} - set(reader.fieldnames or ())
        if missing:
            raise AccountError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                role = parse_role((row.get("role") or "").strip())
            except ValueError as exc:
                raise AccountError(f"{path} line {line}: {exc}") from None
            rows.append(
                RosterRow(
                    (row.get("name") or "").strip(),
                    role,
                    row.get("password") or "",
                    (row.get("scope") or "").strip() or None,
                    (row.get("officer") or "").strip() or None,
                    (row.get("display_name") or "").strip(),
                )
            )
    return rows


def import_roster(identity: Identity, rows: list[RosterRow], *, now: float) -> int:
    """Add every row, or none if a row is bad (checked before anything is written)."""
    names = [r.name for r in rows]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise AccountError(f"the roster names {', '.join(repeated)} more than once")
    for row in rows:
        if len(row.password) < MIN_PASSWORD:
            raise AccountError(f"{row.name}: passwords need at least {MIN_PASSWORD} characters")
        if identity.accounts.get(row.name) is not None:
            raise AccountError(f"account {row.name!r} exists already")
    count = 0
    for row in rows:
        identity.add(
            row.name, row.role, row.password, scope=row.scope, officer=row.officer,
            display_name=row.display_name, by="import", now=now,
        )  # fmt: skip
        count += 1
    return count
