"""Inbox entries into events: every kind the ingest and the API put in the engine's inbox, and
every reason an entry cannot be translated."""

from __future__ import annotations

import json
import typing

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import messages
from devices.translate import COMMANDS, Assignments, Untranslatable, translate
from dispatch.core import events as ev
from dispatch.core.model import IncidentId, OrderId, Source
from dispatch.core.roster import OfficerId
from gis.coords import Datum, LonLat, to_wgs84

T0 = 1_800_000_000
INCIDENT, ORDER = IncidentId("INC-1"), OrderId("O-1")
OTHER_INCIDENT, OTHER_ORDER = IncidentId("INC-2"), OrderId("O-2")
OFFICER = OfficerId("officer005")
CURRENT = Assignments(
    order_incident={ORDER: INCIDENT, OTHER_ORDER: OTHER_INCIDENT},
    officer_orders={OFFICER: [(INCIDENT, ORDER), (OTHER_INCIDENT, OTHER_ORDER)]},
)
NOTHING = Assignments({}, {})


def from_device(kind: str, message: messages.Message, officer: str = OFFICER) -> dict[str, str]:
    """The inbox entry ingest writes for a device message: its fields as received, tagged."""
    fields = {k: v for k, v in msgspec.structs.asdict(message).items() if v is not None}
    tag = message.__struct_config__.tag
    body = msgspec.json.encode({"_type": tag, **fields, "rx": T0 + 0.2}).decode()
    return {"kind": kind, "device": f"{officer}/BC-1", "officer": officer, "body": body}


def command(body: dict[str, object]) -> dict[str, str]:
    return {"kind": "command", "body": json.dumps(body)}


def ack(status: str, order: str = ORDER, reason: str | None = None) -> dict[str, str]:
    return from_device("ack", messages.Ack(order, status, T0, reason=reason))


def reason(result: list[ev.Event] | Untranslatable) -> str:
    assert isinstance(result, Untranslatable), result
    return result.reason


# Values a command may carry (coordinates in range, 64-bit priorities): what a client can send.
_SENDABLE = {
    "location": st.builds(LonLat, st.floats(-180, 180), st.floats(-90, 90)),
    "priority": st.integers(-(2**63), 2**63 - 1),
}


def any_instance(cls: type) -> st.SearchStrategy[ev.Event]:
    """Every field drawn, the defaulted ones too: a field the translation drops shows."""
    hints = typing.get_type_hints(cls)
    return st.builds(
        cls, **{name: _SENDABLE.get(name, st.from_type(h)) for name, h in hints.items()}
    )


any_command = st.sampled_from(list(COMMANDS.values())).flatmap(any_instance)


@given(any_command)
def test_every_command_comes_back_as_the_event_it_names(event: ev.Event) -> None:
    body = {"type": type(event).__name__, **msgspec.to_builtins(event)}
    assert translate("1-0", command(body), NOTHING) == [event]


def test_every_dispatcher_event_is_a_command_and_no_device_only_one_is() -> None:
    # OfficerWentOffline is decided from presence, a sensor's alarms and clears from its
    # readings (dispatch.core.sensors): never asked for by a client.
    device_only = {ev.OfficerWentOffline, ev.SensorAlarmed, ev.SensorCleared}
    assert set(COMMANDS.values()) == set(ev.Event.__args__) - device_only


def test_unknown_and_malformed_commands_say_what_is_wrong() -> None:
    unknown = reason(translate("1-0", command({"type": "IncidentExploded"}), NOTHING))
    assert "'IncidentExploded'" in unknown and "IncidentReported" in unknown
    assert "unknown command ''" in reason(translate("1-0", command({}), NOTHING))
    missing = reason(
        translate("1-0", command({"type": "IncidentClosed", "incident": "I"}), NOTHING)
    )
    assert missing.startswith("command IncidentClosed:") and "by" in missing
    typed = command({"type": "IncidentAcknowledged", "incident": "I", "by": 7})
    assert reason(translate("1-0", typed, NOTHING)).startswith("command IncidentAcknowledged:")


def test_a_body_that_is_not_json_and_an_unknown_kind_name_the_entry() -> None:
    broken = {"kind": "command", "body": "{"}
    assert reason(translate("7-1", broken, NOTHING)) == (
        "inbox entry 7-1 has a body that cannot be used: not valid JSON: Input data was truncated"
    )
    assert reason(translate("7-2", {"kind": "devstat", "body": "{}"}, NOTHING)) == (
        "inbox entry 7-2 has unknown kind 'devstat'"
    )
    assert reason(translate("7-3", {}, NOTHING)) == "inbox entry 7-3 has unknown kind ''"


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("accepted", ev.OrderAccepted(INCIDENT, ORDER, OFFICER, via="terminal")),
        ("rejected", ev.OrderRejected(INCIDENT, ORDER, OFFICER, reason="flat tyre")),
        ("enroute", ev.OfficerDeparted(INCIDENT, ORDER, OFFICER, via="button")),
        ("arrived", ev.OfficerArrived(INCIDENT, ORDER, OFFICER, via="button")),
        ("done", ev.IncidentResolved(INCIDENT, by=OFFICER, result="flat tyre")),
    ],
)
def test_each_ack_status_is_its_event_on_the_order_s_incident(status: str, event: ev.Event) -> None:
    assert translate("1-0", ack(status, reason="flat tyre"), CURRENT) == [event]


def test_an_ack_without_a_reason_carries_an_empty_one() -> None:
    assert translate("1-0", ack("rejected"), CURRENT) == [
        ev.OrderRejected(INCIDENT, ORDER, OFFICER, reason="")
    ]
    assert translate("1-0", ack("done"), CURRENT) == [
        ev.IncidentResolved(INCIDENT, by=OFFICER, result="")
    ]


def test_received_only_confirms_delivery() -> None:
    assert translate("1-0", ack("received"), CURRENT) == []


def test_an_ack_for_an_order_that_is_not_current_is_refused() -> None:
    assert reason(translate("1-0", ack("accepted", order="O-9"), CURRENT)) == (
        "ack for order 'O-9', which is not a current order"
    )
    assert isinstance(translate("1-0", ack("received", order="O-9"), CURRENT), Untranslatable)


def transition(event: str, desc: str | None) -> dict[str, str]:
    return from_device(
        "transition", messages.Transition(29.08, 119.65, T0, event, desc=desc, acc=8.0)
    )


def test_entering_the_order_s_fence_is_an_arrival_by_geofence() -> None:
    assert translate("1-0", transition("enter", "order:O-2"), CURRENT) == [
        ev.OfficerArrived(OTHER_INCIDENT, OTHER_ORDER, OFFICER, via="geofence")
    ]


@pytest.mark.parametrize(
    ("event", "desc"),
    [("leave", "order:O-1"), ("enter", "home"), ("enter", "O-1"), ("enter", None)],
)
def test_other_transitions_mean_nothing(event: str, desc: str | None) -> None:
    assert translate("1-0", transition(event, desc), CURRENT) == []


def test_entering_the_fence_of_an_order_that_is_not_current_is_refused() -> None:
    assert reason(translate("1-0", transition("enter", "order:O-9"), CURRENT)) == (
        "geofence enter for order 'O-9', which is not a current order"
    )


def sos(**fields: object) -> dict[str, str]:
    return from_device("sos", messages.Sos(T0, **fields))


def test_an_sos_reports_a_top_priority_incident_named_after_its_entry() -> None:
    (event,) = translate("17-3", sos(lat=29.08, lon=119.65, alarm="fall"), NOTHING)
    assert event == ev.IncidentReported(
        IncidentId("SOS-17-3"),
        category="sos",
        priority=1,
        location=LonLat(119.65, 29.08),
        source=Source.DEVICE_SOS,
        title=f"fall from officer {OFFICER}",
        by=OFFICER,
    )


@pytest.mark.parametrize("datum", [Datum.GCJ02, Datum.BD09])
def test_an_sos_position_is_brought_into_wgs84(datum: Datum) -> None:
    (event,) = translate("1-0", sos(lat=29.08, lon=119.65, crs=datum.value), NOTHING)
    assert isinstance(event, ev.IncidentReported)
    assert event.location == to_wgs84(119.65, 29.08, datum)
    assert event.location != LonLat(119.65, 29.08)


def test_a_cancelled_sos_reports_nothing() -> None:
    assert translate("1-0", sos(lat=29.08, lon=119.65, cancel=True), NOTHING) == []


def test_an_sos_without_a_usable_position_opens_at_the_officer_s_last_known_one() -> None:
    last = LonLat(119.64, 29.07)
    refused = sos()
    refused["body"] = refused["body"].replace("{", '{"position_refused":"lat 0 is no fix",', 1)
    as_text = {"kind": "sos", "officer": OFFICER, "body": '{"lat": "29.08", "lon": "119.65"}'}
    cases = [
        (sos(), "the alarm carries no position"),
        (sos(lat=29.08), "the alarm carries no position"),
        (as_text, "the alarm carries no position"),
        (refused, "its position was refused (lat 0 is no fix)"),
        (sos(lat=29.08, lon=119.65, crs="utm"), "unknown crs 'utm'"),
    ]
    for entry, why in cases:
        (event,) = translate("4-2", entry, NOTHING, last)
        assert isinstance(event, ev.IncidentReported)
        assert event.location == last and event.priority == 1
        assert event.title == f"sos from officer {OFFICER} (at the last known position: {why})"
        # With no position of the officer either, nothing can be placed: refused with both.
        assert reason(translate("4-2", entry, NOTHING)) == (
            f"SOS from {OFFICER}: {why}, and no position of the officer is known"
        )


def test_a_device_going_offline_leaves_each_of_its_officer_s_orders() -> None:
    offline = [
        ev.OfficerWentOffline(INCIDENT, OFFICER),
        ev.OfficerWentOffline(OTHER_INCIDENT, OFFICER),
    ]
    assert translate("1-0", from_device("conn", messages.Conn(online=False)), CURRENT) == offline
    assert translate("1-0", from_device("lwt", messages.Lwt(tst=T0)), CURRENT) == offline
    assert translate("1-0", from_device("lwt", messages.Lwt(), "officer009"), CURRENT) == []


def test_a_device_coming_online_changes_nothing() -> None:
    assert translate("1-0", from_device("conn", messages.Conn(online=True)), CURRENT) == []
    # A conn body without `online` is read as online: silence, not a missing key, is offline.
    assert translate("1-0", {"kind": "conn", "officer": OFFICER, "body": "{}"}, CURRENT) == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # The two SOS bodies that once stopped every engine in turn.
        (
            '{"_type":"sos","tst":1,"raw":{"a":' + "[" * 990 + "]" * 990 + "}}",
            "levels deep; at most 16",
        ),
        ('{"_type":"sos","tst":1,"crs":"bd09","lat":1e308,"lon":119.65}', "lat 1e+308 is outside"),
        ('{"_type":"sos","tst":1,"lat":Infinity,"lon":119.65}', "not valid JSON"),
        ('{"_type":"sos","tst":1,"lat":1e999,"lon":119.65}', "not valid JSON"),
        ('{"_type":"sos","tst":1,"crs":"gcj02","lat":29.0,"lon":-400}', "lon -400.0 is outside"),
        ('{"_type":"sos","tst":1,"lat":29.0,"lon":' + "9" * 400 + "}", "no usable position"),
        ("[1]", "not a JSON object"),
    ],
)
def test_poisoned_sos_bodies_are_refused_with_a_reason(body: str, why: str) -> None:
    entry = {"kind": "sos", "officer": OFFICER, "body": body}
    assert why in reason(translate("9-1", entry, NOTHING))


def test_a_command_placing_an_incident_nowhere_is_refused() -> None:
    body = {"type": "IncidentReported", "incident": "I", "category": "x", "priority": 2}
    body["source"] = "12345"
    refused = translate("9-2", command({**body, "location": [119.6, 95.0]}), NOTHING)
    assert reason(refused) == "command IncidentReported: lat 95.0 is outside -90..90"
