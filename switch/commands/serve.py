"""``atm-switch serve``: run the switch until SIGTERM/SIGINT.

Needs an installation made by ``atm-switch db init`` (which, as the database owner,
applies the migrations and creates the LMK): on a data directory or database that is not
initialised, or whose schema is older than this switch, it exits non-zero saying so.
Starts the embedded PostgreSQL when no DSN is given, then listens and prints
``listening HOST:PORT`` on standard output (spec 9). Logs are JSON on stderr.
The first SIGTERM/SIGINT drains gracefully; a second one stops at once.

``--workers N`` (N > 1) runs a supervisor instead (switch/supervisor.py): it
starts the embedded PostgreSQL if needed, reserves the port, and runs N worker
processes (this same command with ``--reuse-port``) sharing the port through
``SO_REUSEPORT``. Worker ``i`` serves its ops HTTP endpoint on
``metrics-port + i`` (each worker is its own Prometheus target; 0 stays 0).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

import asyncpg
import trio

from ops.logs import configure_logging
from switch.app import SwitchApp
from switch.cluster_sessions import ClusterSessions
from switch.commands.common import CliError, add_dsn_flag
from switch.config import Config, ConfigError
from switch.db.embedded import EmbeddedDatabaseError, database_dsn
from switch.db.installation import NotInitialised, installation_mode, require_initialised
from switch.db.migrate import available_migrations
from switch.db.roles import PrivilegedRole, app_dsn, require_restricted
from switch.db.runtime import DatabaseUnavailable, open_database
from switch.fdlimit import raise_open_file_limit
from switch.link_policy import PlainTerminalLinkRefused, check_terminal_link
from switch.supervisor import (
    Supervisor,
    WorkerStartFailed,
    format_address,
    reuseport_listeners,
    reuseport_socket,
)

ORPHAN_CHECK_S = 1.0  # how often a worker checks that its supervisor is alive


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    serve = subparsers.add_parser("serve", help="run the switch", parents=[common])
    add_dsn_flag(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=None, help="listen port (default 8583; 0 picks a free port)"
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="ops HTTP port for /metrics /healthz /readyz (default 9583; 0 disables)",
    )
    serve.add_argument("--metrics-host", default=None, help="ops HTTP address (default 127.0.0.1)")
    serve.add_argument(
        "--framing",
        choices=["binary2", "ascii4"],
        default=None,
        help="length prefix (default binary2)",
    )
    serve.add_argument(
        "--tls-cert", default=None, help="PEM certificate: serve TLS 1.2+ instead of plain TCP"
    )
    serve.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    serve.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port via SO_REUSEPORT, under a supervisor (default 1)",
    )
    serve.add_argument("--supervisor-pid", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="listen with SO_REUSEPORT, so several serve processes can share one port",
    )
    serve.set_defaults(handler=_serve, config_flags=_config_flags)


def _config_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "server.host": args.host,
        "server.port": args.port,
        "server.framing": args.framing,
        "server.tls_cert": args.tls_cert,
        "server.tls_key": args.tls_key,
        "ops.metrics_port": args.metrics_port,
        "ops.metrics_host": args.metrics_host,
        "ops.log_level": args.log_level,
        "server.workers": args.workers,
    }


def _serve(args: argparse.Namespace, config: Config) -> int:
    configure_logging(config.ops.log_level, config.ops.log_file)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # initdb/pg_ctl transcripts
    if config.server.workers < 1:
        raise CliError("--workers must be at least 1")
    if config.server.workers > 1:
        return _supervise(args, config)
    if config.server.gil_switch_interval_s > 0:
        sys.setswitchinterval(config.server.gil_switch_interval_s)
    soft, _ = raise_open_file_limit(config.server.connections_max)
    if soft < config.server.connections_max:
        logging.getLogger("switch").warning(
            "open-file limit %d is below server.connections_max %d: raise the hard limit",
            soft,
            config.server.connections_max,
        )
    try:
        with database_dsn(config) as dsn:
            trio.run(_run, config, dsn, bool(args.reuse_port), args.supervisor_pid)
    except (EmbeddedDatabaseError, NotInitialised, PrivilegedRole) as exc:
        raise CliError(str(exc)) from exc
    except asyncpg.exceptions.InvalidAuthorizationSpecificationError as exc:
        # The application role is made by `db init`: without it the database is not set up.
        raise CliError(
            f"the database is not initialised ({exc}): run `atm-switch db init` first"
        ) from exc
    except ConfigError as exc:  # e.g. a [networks] entry found wrong while wiring the app
        raise CliError(f"configuration: {exc}") from exc
    except DatabaseUnavailable as exc:
        raise CliError(f"PostgreSQL is unavailable: {exc}") from exc
    except OSError as exc:
        raise CliError(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror or exc}"
        ) from exc
    return 0


def _application_dsn(config: Config, owner_dsn: str) -> str:
    """Least privilege: serve never uses the owner's DSN (issue 11 item 4)."""
    if config.database.app_dsn:
        return config.database.app_dsn
    try:
        return app_dsn(owner_dsn, config.database.app_role)
    except ValueError as exc:
        raise CliError(f"configuration: {exc}; set database.app_dsn") from exc


async def _run(
    config: Config, owner_dsn: str, reuse_port: bool = False, supervisor_pid: int | None = None
) -> None:
    database = config.database
    async with open_database(
        _application_dsn(config, owner_dsn),
        pool_size_min=database.pool_size_min,
        pool_size_max=database.pool_size_max,
        call_timeout_s=database.call_timeout_s,
        bridge=database.bridge,
    ) as db:
        await require_initialised(db, {m.version for m in available_migrations()})
        _check_terminal_link(await installation_mode(db), config)
        role = await require_restricted(db)
        logging.getLogger("atm.serve").info("database role", extra={"reason": role})
        app = SwitchApp(config, db, hsm=_open_hsm(config))
        app.install_extensions()
        _install_cluster_sessions(app, db)
        if reuse_port:
            server = config.server
            app.server.open_listeners = functools.partial(
                reuseport_listeners, server.host, server.port
            )
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:

                async def run_app(task_status: trio.TaskStatus[list[tuple[str, int]]]) -> None:
                    await app.run(task_status=task_status)
                    nursery.cancel_scope.cancel()

                addresses = await nursery.start(run_app)
                host, port = addresses[0]
                print(f"listening {host}:{port}", flush=True)
                nursery.start_soon(_stop_on_signals, signals, app, nursery.cancel_scope)
                if supervisor_pid is not None:
                    nursery.start_soon(_drain_when_orphaned, supervisor_pid, app)


def _check_terminal_link(mode: str | None, config: Config) -> None:
    """Issue 18: refuse, or log on every start, a terminal link without client certificates."""
    try:
        warning = check_terminal_link(mode, config.server)
    except PlainTerminalLinkRefused as exc:
        logging.getLogger("atm.serve").error("terminal link refused", extra={"reason": str(exc)})
        raise CliError(str(exc)) from exc
    if warning is not None:
        logging.getLogger("atm.serve").log(warning.level, warning.message)


def _install_cluster_sessions(app: SwitchApp, db: Any) -> None:
    """One connection per terminal across nodes (switch/cluster_sessions.py), on the app's
    notification hub (subscribed before the app runs it)."""
    cluster = ClusterSessions(db, app.sessions, app.notifications)
    app.network.add_sign_on_step(cluster.record_sign_on)
    app.add_background_task(cluster.run)


async def _drain_when_orphaned(supervisor_pid: int, app: SwitchApp) -> None:
    """A worker whose supervisor died (SIGKILL) drains and exits rather than serve unwatched."""
    while os.getppid() == supervisor_pid:
        await trio.sleep(ORPHAN_CHECK_S)
    logging.getLogger("atm.serve").warning("supervisor gone: shutting down")
    app.request_shutdown()


async def _stop_on_signals(signals: Any, app: SwitchApp, everything: trio.CancelScope) -> None:
    received = 0
    async for signum in signals:
        received += 1
        # A log record, not a print: stderr carries one JSON object per line.
        logging.getLogger("atm.serve").warning(
            "shutting down", extra={"signal": signal.Signals(signum).name})
        if received == 1:
            app.request_shutdown()
        else:
            everything.cancel()


def _supervise(args: argparse.Namespace, config: Config) -> int:
    """Reserve the port, then run and watch ``server.workers`` worker processes."""
    server = config.server
    try:
        with database_dsn(config) as dsn, contextlib.closing(
            reuseport_socket(server.host, server.port)
        ) as reserved:
            port = int(reserved.getsockname()[1])

            def announce() -> None:
                print(f"listening {format_address(server.host, port)}", flush=True)

            supervisor = Supervisor(
                functools.partial(_worker_command, args, config, port),
                server.workers,
                # Issue 18: the DSN reaches workers in their environment, never on their
                # command line (which every local user can read in ps / /proc/PID/cmdline).
                environment=worker_environment(dsn),
                announce=announce,
                stop_timeout_s=server.shutdown_grace_s + 15.0,
            )
            trio.run(supervisor.run)
    except EmbeddedDatabaseError as exc:
        raise CliError(str(exc)) from exc
    except WorkerStartFailed as exc:
        raise CliError(f"{exc} (see its log above)") from exc
    except OSError as exc:
        raise CliError(
            f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}"
        ) from exc
    return 0


def worker_metrics_port(base: int, index: int) -> int:
    """Worker ``index``'s ops port: ``base + index``, or 0 (a free port) when ``base`` is 0."""
    return base + index if base else 0


def worker_environment(dsn: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The workers' environment: ours plus the effective DSN as ``ATM_SWITCH_DSN`` (the
    environment outranks the configuration file). ``ATM_SWITCH_DATABASE_DSN`` is dropped: it
    would outrank ``ATM_SWITCH_DSN`` and could differ from a DSN given by flag or file."""
    inherited = dict(os.environ if environ is None else environ)
    inherited.pop("ATM_SWITCH_DATABASE_DSN", None)
    return inherited | {"ATM_SWITCH_DSN": dsn}


def _worker_command(
    args: argparse.Namespace, config: Config, port: int, index: int
) -> list[str]:
    """This command again, as one worker: every effective setting passed as a flag, but the
    DSN (it may hold a password), which :func:`worker_environment` carries."""
    server, ops = config.server, config.ops
    argv = [
        sys.executable, "-m", "switch.cli", "serve",
        "--data-dir", str(config.data_dir),
        "--host", server.host,
        "--port", str(port),
        "--workers", "1",
        "--reuse-port",
        "--supervisor-pid", str(os.getpid()),
        "--metrics-host", ops.metrics_host,
        "--metrics-port", str(worker_metrics_port(ops.metrics_port, index)),
        "--framing", server.framing,
        "--log-level", ops.log_level,
    ]  # fmt: skip
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    if server.tls_cert:
        argv += ["--tls-cert", server.tls_cert, "--tls-key", server.tls_key or server.tls_cert]
    return argv


def _open_hsm(config: Config) -> Any:
    """The software HSM when the ``switch.hsm`` package provides one, else None."""
    try:
        from switch.hsm import open_hsm
    except ImportError:
        return None
    try:
        return open_hsm(config)
    except Exception as exc:  # a missing/unreadable LMK: report it plainly
        raise CliError(f"cannot open the HSM: {exc}") from exc
