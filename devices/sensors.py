"""IoT sensors' readings as they arrive (pure): judged against the sensor registry and the
catalogue of sensor types, then filed for the engine.

A reading counts only from a registered sensor (`unknown_sensor`), reporting as the type it
was registered as (`wrong_sensor_type`) and in that type's unit (`wrong_unit`: 2.0 mg/m³ and
2.0 g/m³ of cooking fume are not one reading), with a finite value (`not_finite`). Its place
is the registered one, or, for a mobile sensor whose reading carries a usable position, its
own; a position that cannot be used is left out with the reason and the registered place
holds, so an alarm is never lost for its position. Whether it is an alarm (its threshold),
and which incident it belongs to, the engine decides (`dispatch.core.sensors`).
"""

from __future__ import annotations

import math

from devices.messages import Reading
from devices.quality import Limits, Reason, Rejection, alarm_position
from dispatch.core.sensors import Sensor, SensorCatalogue
from gis.coords import LonLat


def unknown_sensor(sensor_id: str) -> Rejection:
    """Why a message on the topics of a sensor nobody registered is refused."""
    return Rejection(
        Reason.UNKNOWN_SENSOR,
        f"sensor {sensor_id!r} is not registered; register it with "
        f"`yiwang devices register-sensor {sensor_id} --type TYPE --lon LON --lat LAT`",
    )


def judge_reading(
    sensor: Sensor, reading: Reading, catalogue: SensorCatalogue, limits: Limits
) -> dict[str, object] | Rejection:
    """The inbox body of a registered sensor's reading (read back by `sensor_report` in
    devices.translate), or why it is refused."""
    sensor_id = sensor.id
    if reading.sensor_type != sensor.sensor_type:
        return Rejection(
            Reason.WRONG_SENSOR_TYPE,
            f"sensor {sensor_id} is registered as {sensor.sensor_type}, "
            f"but reports as {reading.sensor_type}",
        )
    kind = catalogue.types.get(sensor.sensor_type)
    if kind is None:
        return Rejection(
            Reason.WRONG_SENSOR_TYPE,
            f"sensor {sensor_id}'s type {sensor.sensor_type!r} is no longer in the catalogue",
        )
    if reading.unit != kind.unit:
        return Rejection(
            Reason.WRONG_UNIT,
            f"{kind.key} readings are in {kind.unit}, not {reading.unit} (sensor {sensor_id})",
        )
    if not math.isfinite(reading.value):
        return Rejection(Reason.NOT_FINITE, f"value {reading.value} is not a finite number")
    body: dict[str, object] = {
        "_type": "reading",
        "sensor": sensor.id,
        "sensor_type": sensor.sensor_type,
        "state": reading.state,
        "value": reading.value,
        "unit": reading.unit,
        "tst": reading.tst,
        "place": sensor.place,
    }
    location = sensor.location
    if sensor.mobile:
        own = alarm_position(reading.lon, reading.lat, reading.crs, limits)
        if isinstance(own, Rejection):
            body["position_refused"] = f"{own.reason}: {own.detail}"
        elif isinstance(own, LonLat):
            location = own
    body["lon"], body["lat"] = location.lon, location.lat
    for name in ("seq", "batt"):
        value = getattr(reading, name)
        if value is not None:
            body[name] = value
    return body
