"""Schema migrations: numbered SQL files applied in order, each once, each in a transaction.

`yiwang db upgrade` runs them; so does every process that opens the database, which is safe
because an advisory lock makes concurrent upgrades wait for each other.
"""

from __future__ import annotations

from importlib import resources

from dispatch.db.database import Database

_LOCK = 0x79697761  # "yiwa": one advisory lock for every upgrade of this schema


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("dispatch.db.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def upgrade(db: Database) -> list[str]:
    """Apply what is missing; returns the names of the migrations applied now."""
    applied: list[str] = []
    with db.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in conn.execute("SELECT version FROM schema_version")}
        for version, name, sql in migrations():
            if version in done:
                continue
            conn.execute(sql)  # type: ignore[arg-type]  # our own files, not user input
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, name)
            )
            applied.append(name)
    return applied
