"""``atm-switch db standby create|promote|status``: a synchronous standby for small sites.

The steps of switch/db/replication.py as commands, so an operator (or a test, or
the failover drill) can build a primary + synchronous standby pair, fail over,
and look at who is primary. ``create`` prints the multi-host DSN to give every
switch node (``--dsn``); that DSN keeps working after ``promote``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from switch.commands.common import CliError, add_json_flag, print_json
from switch.config import Config
from switch.db import replication
from switch.db.replication import Node, ReplicationError


def register(db_sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``standby`` under ``atm-switch db``."""
    standby = db_sub.add_parser(
        "standby", help="PostgreSQL primary + synchronous standby", parents=[common]
    )
    actions = standby.add_subparsers(dest="standby_command", metavar="ACTION")
    actions.required = True

    create = actions.add_parser(
        "create",
        help="create (or reuse) a primary and add a synchronous streaming standby",
        parents=[common],
    )
    create.add_argument("--primary-pgdata", required=True, type=Path,
                        help="primary data directory (initdb'd and started when empty)")
    create.add_argument("--primary-port", type=int, default=5432)
    create.add_argument("--standby-pgdata", required=True, type=Path,
                        help="standby data directory (must not exist or be empty)")
    create.add_argument("--standby-port", type=int, default=5433)
    create.add_argument("--host", default="127.0.0.1", help="address both servers listen on")
    create.add_argument("--name", default="standby1", help="application_name of the standby")
    add_json_flag(create)
    create.set_defaults(handler=_create)

    promote = actions.add_parser(
        "promote", help="promote the standby to primary (fence the old one first)",
        parents=[common],
    )
    promote.add_argument("--standby-pgdata", required=True, type=Path)
    add_json_flag(promote)
    promote.set_defaults(handler=_promote)

    status = actions.add_parser(
        "status", help="role and replication state of each server", parents=[common]
    )
    status.add_argument("--pgdata", action="append", type=Path, default=[],
                        help="a server's data directory (repeatable)")
    status.add_argument("--node", action="append", default=[],
                        help="a server's HOST:PORT (repeatable)")
    add_json_flag(status)
    status.set_defaults(handler=_status)


def _create(args: argparse.Namespace, config: Config) -> int:
    primary = Node(args.primary_pgdata.resolve(), args.primary_port, args.host)
    standby = Node(args.standby_pgdata.resolve(), args.standby_port, args.host)
    try:
        if not (primary.pgdata / "PG_VERSION").exists():
            replication.init_primary(primary)
        if not replication.is_running(primary):
            replication.start(primary)
        replication.create_standby(primary, standby, args.name)
    except ReplicationError as exc:
        raise CliError(str(exc)) from exc
    dsn = replication.multi_host_dsn([primary, standby])
    if args.json:
        print_json({"dsn": dsn, "primary": primary.dsn(), "standby": standby.dsn(),
                    "synchronous_standby": args.name})
    else:
        print(f"synchronous standby {args.name} streaming from {primary.host}:{primary.port}")
        print(f"dsn {dsn}")
    return 0


def _promote(args: argparse.Namespace, config: Config) -> int:
    try:
        node = replication.running_node(args.standby_pgdata)
        replication.promote(node)
        status = replication.node_status(node)
    except ReplicationError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print_json(status)
    else:
        print(f"promoted: {status['address']} is now {status['role']}")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    nodes: list[Node] = []
    try:
        nodes += [replication.running_node(path) for path in args.pgdata]
    except ReplicationError as exc:
        raise CliError(str(exc)) from exc
    for text in args.node:
        host, _, port = str(text).rpartition(":")
        if not host or not port.isdigit():
            raise CliError(f"--node wants HOST:PORT, got {text!r}")
        nodes.append(Node(Path("."), int(port), host.strip("[]")))
    if not nodes:
        raise CliError("give at least one --pgdata or --node")
    statuses = [replication.node_status(node) for node in nodes]
    if args.json:
        print_json({"nodes": statuses})
    else:
        for status in statuses:
            extra = ", ".join(
                f"{s['application_name']} {s['state']} {s['sync_state']}"
                for s in status.get("standbys", [])
            )
            print(f"{status['address']} {status['role']}" + (f" ({extra})" if extra else ""))
    return 0
