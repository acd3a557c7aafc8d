"""`yiwang jt808`: run the JT/T 808 gateway, and configure its terminals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from devices.jt808.terminals import Terminal
from dispatch.jt808_service import Jt808Service
from dispatch.settings import Settings
from dispatch.store import Store, without_password
from gis.coords import Datum

log = logging.getLogger("yiwang")

# Where `yiwang jt808` listens without YIWANG_JT808_PORT: EMQX's JT/T 808 default.
DEFAULT_PORT = 6207


def cmd_jt808(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "terminal":
        return _configure(args, settings)
    return asyncio.run(_serve(args, settings))


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_url(settings.redis_url, settings.key_prefix, settings.durability())
    store.upgrade()
    service = Jt808Service(
        settings,
        store,
        settings.city(datetime.now(ZoneInfo(settings.timezone))),
        host=args.host or settings.jt808_host,
        port=args.port or settings.jt808_port or DEFAULT_PORT,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("jt808 gateway storing into %s", without_password(settings.redis_url))
    await service.serve(stopping)
    return 0


def _configure(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_url(settings.redis_url, settings.key_prefix)
    terminal = store.terminals.terminal(args.phone) or Terminal(args.phone)
    if args.crs:
        terminal = replace(terminal, crs=Datum(args.crs))
    if args.utc_offset_h is not None:
        terminal = replace(terminal, utc_offset_s=round(args.utc_offset_h * 3600))
    if args.new_code:
        terminal = replace(terminal, auth_code="")
    store.terminals.save(terminal)
    officer = store.terminals.officer_of(args.phone)
    if officer is None:
        print(
            f"warning: {args.phone} is bound to no officer; its registration will be refused "
            f"until `yiwang devices bind {args.phone} --officer LOGIN`",
            file=sys.stderr,
        )
    print(
        f"{terminal.phone}: officer {officer or '-'}, crs {terminal.crs}, "
        f"clock UTC{terminal.utc_offset_s / 3600:+g}, "
        f"{'registered' if terminal.auth_code else 'registers on its next connection'}"
    )
    return 0


def add_jt808_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jt808 = commands.add_parser(
        "jt808", help="run the JT/T 808 terminal gateway (TCP → the ingest's store path)"
    )
    jt808.add_argument("--host", help="listen address (default: YIWANG_JT808_HOST)")
    jt808.add_argument(
        "--port", type=int, help=f"listen port (default: YIWANG_JT808_PORT, else {DEFAULT_PORT})"
    )
    actions = jt808.add_subparsers(
        dest="action", metavar="ACTION", help="none: serve terminals and deliver their orders"
    )
    terminal = actions.add_parser(
        "terminal", help="set a terminal's datum or clock offset, or make it register anew"
    )
    terminal.add_argument("phone", help="the terminal's phone number as its header carries it")
    terminal.add_argument("--crs", choices=[d.value for d in Datum], help="datum it reports in")
    terminal.add_argument(
        "--utc-offset-h", type=float, help="its clock's offset from UTC in hours (default 8)"
    )
    terminal.add_argument(
        "--new-code", action="store_true", help="forget its auth code: it must register again"
    )
    jt808.set_defaults(func=cmd_jt808)
