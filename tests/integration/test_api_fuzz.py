"""Generated requests for every operation of /openapi.json against a served center: with an
admin token nothing answers 5xx; without one, every protected operation answers 401."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from dispatch.api.app import create_app
from dispatch.settings import Settings
from harness.daemons import free_port
from tests.integration.helpers import bearer, serving
from tests.integration.test_terminal_flow import city_files

# Reachable without credentials: liveness, and logging in and out.
PUBLIC = {("GET", "/api/health"), ("POST", "/api/session"), ("DELETE", "/api/session")}
# Devices' own channel asks for a device's key, which the schema names: a generated one is
# nobody's (403), or the request is refused unread (400, 422).
DEVICE_KEYED = {("GET", "/api/osmand"), ("POST", "/api/osmand")}


class Served(NamedTuple):
    base: str
    admin: dict[str, str]


@pytest.fixture(scope="module")
def served(redis_service, postgres, tmp_path_factory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("fuzz")
    areas, roster = city_files(workdir)
    database_url = postgres.create_database("fuzz", template="yiwang_template")
    config = Settings(
        redis_url=redis_service.url,
        key_prefix="fuzz",
        database_url=database_url,
        areas_file=areas,
        roster_file=roster,
        data_dir=workdir / "var",
        engine_id="fuzz-engine",
        http_port=free_port(),
    )
    with serving(create_app(config, workers=("engine",)), config.http_port):
        yield Served(
            f"http://127.0.0.1:{config.http_port}", bearer(database_url, name="fuzz-admin")
        )


FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


def fuzz(served: Served, check: Callable[[Any], None]) -> int:
    """Run `check` on generated cases of every operation; returns how many operations ran."""
    schema = schemathesis.openapi.from_url(f"{served.base}/openapi.json")
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def run(case: Any) -> None:
            check(case)

        run()
        operations += 1
    return operations


def test_no_generated_request_makes_the_server_fail(served: Served) -> None:
    def check(case: Any) -> None:
        response = case.call(base_url=served.base, headers=served.admin)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
        )

    assert fuzz(served, check) >= 20


def test_without_credentials_every_protected_operation_answers_401(served: Served) -> None:
    def check(case: Any) -> None:
        response = case.call(base_url=served.base)
        if (case.method.upper(), case.path) in PUBLIC:
            assert response.status_code < 500
        elif (case.method.upper(), case.path) in DEVICE_KEYED:
            assert response.status_code in (400, 401, 403, 422), (
                f"{case.method} {case.formatted_path} → {response.status_code}: "
                f"{response.text[:300]}"
            )
        else:
            assert response.status_code == 401, (
                f"{case.method} {case.formatted_path} → {response.status_code}: "
                f"{response.text[:300]}"
            )

    assert fuzz(served, check) >= 20
