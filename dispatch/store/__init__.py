"""Every Redis key Yiwang uses, and every read and write of them.

Nothing outside this package names a key: keys share a prefix (one deployment, or one test)
and are built by `Keys`. `Store` serves devices, tracks and ingest, whose batch write is a
Redis function (store.lua) so that one call stores a whole batch atomically; `EngineStore`
serves the incident engine, whose steps are single transactions.
"""

from dispatch.store.devices import (
    FIX_CONFLICT,
    FIX_DUPLICATE,
    FIX_STORED,
    Binding,
    DeviceSnapshot,
    DeviceState,
    IngestBatch,
    PendingWrite,
    Store,
)
from dispatch.store.engine import ENGINE_GROUP, EngineStep, EngineStore
from dispatch.store.keys import Keys

__all__ = [
    "ENGINE_GROUP",
    "FIX_CONFLICT",
    "FIX_DUPLICATE",
    "FIX_STORED",
    "Binding",
    "DeviceSnapshot",
    "DeviceState",
    "EngineStep",
    "EngineStore",
    "IngestBatch",
    "Keys",
    "PendingWrite",
    "Store",
]
