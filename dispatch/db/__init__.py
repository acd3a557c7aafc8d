"""The durable store: PostgreSQL for what must be kept and queried for months (accounts,
credentials' records, the access audit). Redis holds what is live."""

from dispatch.db.accounts import Account, AccountStore, ApiToken
from dispatch.db.database import Database, DatabaseUnavailable, ValueNotStorable
from dispatch.db.migrate import upgrade

__all__ = [
    "Account",
    "AccountStore",
    "ApiToken",
    "Database",
    "DatabaseUnavailable",
    "ValueNotStorable",
    "upgrade",
]
