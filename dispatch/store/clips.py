"""Body-camera clip records, by clip id and by officer and time, and tracks read from the clip
files' own telemetry (kept apart from the devices' chains)."""

from __future__ import annotations

import json
from typing import Any

import redis

from dispatch.store.keys import Keys


class ClipStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def clip(self, clip_id: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.clips, clip_id)
        return json.loads(text) if text else None

    def clip_ids_for_officer(self, officer: str, start: float, end: float) -> list[str]:
        return list(self.redis.zrangebyscore(self.keys.clips_by_officer(officer), start, end))

    def save_file_track(self, clip_id: str, track: dict[str, Any]) -> None:
        self.redis.hset(self.keys.file_tracks, clip_id, json.dumps(track))

    def file_track(self, clip_id: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.file_tracks, clip_id)
        return None if text is None else json.loads(text)  # type: ignore[no-any-return]
