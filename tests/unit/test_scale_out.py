"""The split center scaled out: every further ingest worker and API node is a process of its
own that does not collide with the first."""

from __future__ import annotations

from devices.membership import client_id_for
from harness.split import COMMANDS, scale_out


def test_further_workers_have_names_and_client_ids_of_their_own_and_nodes_ports() -> None:
    extra = scale_out(3, 3, "site-ingest")
    workers = [env["YIWANG_INGEST_NAME"] for _, command, env in extra if command == "ingest"]
    assert workers == ["site-ingest-2", "site-ingest-3"]
    client_ids = {client_id_for(name) for name in ["site-ingest", *workers]}
    assert len(client_ids) == 3  # one session each: none takes another's share
    ports = [env["YIWANG_HTTP_PORT"] for _, command, env in extra if command == "api-node"]
    assert len(set(ports)) == 2
    assert {name for name, _, _ in extra} == {"ingest-2", "ingest-3", "api-2", "api-3"}


def test_further_api_nodes_run_no_workers_and_one_of_each_adds_nothing() -> None:
    assert COMMANDS["api-node"] == ["serve", "--api-only"]
    assert scale_out(1, 1, "site-ingest") == []
