"""One connection pool per process; every query borrows a connection for one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

# What a caller catches to say "the database is unreachable" (an API answers 503).
DatabaseUnavailable = (psycopg.OperationalError, PoolTimeout)
# A value PostgreSQL cannot store (a NUL character in text, a number out of range): the
# caller's input is at fault (an API answers 422).
ValueNotStorable = (psycopg.DataError,)


class Database:
    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        # Connections are made on first use and checked before they are lent: a PostgreSQL
        # restart costs the callers of that moment one error, not a dead pool.
        self.pool = ConnectionPool(
            url,
            min_size=0,
            max_size=max_size,
            open=True,
            check=ConnectionPool.check_connection,
            kwargs={"row_factory": dict_row},
            timeout=10.0,
        )

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[dict]]:  # type: ignore[type-arg]
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.pool.connection() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.transaction() as conn:
                conn.execute("SELECT 1")
            return True
        except DatabaseUnavailable:
            return False

    def close(self) -> None:
        self.pool.close()
