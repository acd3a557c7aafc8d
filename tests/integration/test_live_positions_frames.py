"""The live feed with `?positions=binary`: positions updates arrive as binary frames a reader
of the documented layout decodes, with each device named once per connection; everything else
stays JSON, and an unknown format is refused with the reason."""

from __future__ import annotations

import json
import time

import pytest
from starlette.websockets import WebSocketDisconnect

from dispatch.store import Store
from tests.frame_reader import FrameReader
from tests.integration.test_live import make_client, new_incident


def _publish(store: Store, rows: list[list[object]]) -> str:
    """A positions entry in the screens' stream, as the ingest writes one; its sequence."""
    return store.redis.xadd(store.keys.events, {"type": "positions", "body": json.dumps(rows)})


def _frame(ws) -> bytes:
    """The next binary message, past any JSON text (incidents, clocks) in between."""
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            return message["bytes"]


def test_positions_arrive_as_frames_with_names_sent_once(
    redis_service, prefix, tmp_path, database_url
) -> None:
    store = Store.from_url(redis_service.url, prefix)
    with (
        make_client(redis_service, prefix, tmp_path, database_url) as client,
        client.websocket_connect("/ws/live?positions=binary") as ws,
    ):
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        assert {row[0] for row in snapshot["devices"]} == {"zhang3/BC-1", "li4/BC-2"}
        reader = FrameReader()
        now = time.time()
        sent = _publish(store, [["zhang3/BC-1", 119.6521234, 29.0815678, int(now), 5, None, now]])
        first = _frame(ws)
        seq, rows = reader.read(first)
        assert seq == sent
        assert rows[0][0] == "zhang3/BC-1"
        assert rows[0][1:3] == pytest.approx([119.6521234, 29.0815678], abs=1e-7)
        assert rows[0][3:] == [int(now), 5, None, now]
        _publish(store, [["zhang3/BC-1", 119.653, 29.082, int(now) + 1, None, 90, now + 1]])
        second = _frame(ws)
        assert b"zhang3/BC-1" in first and b"zhang3/BC-1" not in second
        _seq, rows = reader.read(second)
        assert rows[0][0] == "zhang3/BC-1"
        assert rows[0][1:3] == pytest.approx([119.653, 29.082], abs=1e-7)
        # Incidents still come as JSON text on the same connection.
        incident = new_incident(client, "still json")
        message = ws.receive()
        while message.get("text") is None or incident not in message["text"]:
            message = ws.receive()
    store.close()


def test_an_unknown_positions_format_is_refused_with_the_reason(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with make_client(redis_service, prefix, tmp_path, database_url) as client:
        with (
            client.websocket_connect("/ws/live?positions=protobuf") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 1008
        assert "positions='protobuf' is not one of json, binary" in closed.value.reason
