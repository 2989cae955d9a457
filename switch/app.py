"""Wires one switch process: config, database, HSM, dispatcher, TCP server, ops endpoint.

Other parts plug in through :meth:`SwitchApp.install_extensions`: when the
``switch.authorization`` package is installed its ``install(app)`` is called and
may use ``app.config``, ``app.db``, ``app.hsm``, ``app.dispatcher``,
``app.metrics``, ``app.ledger`` and :meth:`SwitchApp.add_background_task`. What each
``install(app)`` uses is a Protocol (``switch/ports.py``, ``AuthorizationHost``,
``NetworksHost``); mypy checks below that this class provides all of them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import ssl
from typing import TYPE_CHECKING

import trio

from ops.http import serve_ops
from ops.metrics import SwitchMetrics
from switch.config import Config, ServerConfig
from switch.db.notifications import Notifications
from switch.db.runtime import Database
from switch.dispatch import Dispatcher
from switch.netmgmt import NetworkManagement, TerminalDirectory
from switch.ports import BackgroundTask, ExtensionHost
from switch.server import SwitchServer
from switch.session import SessionRegistry

if TYPE_CHECKING:
    from ledger_adapter import Ledger
    from switch.authorization import AuthorizationHost
    from switch.authorization.service import Authorization
    from switch.hsm import Hsm
    from switch.networks import NetworksHost
    from switch.networks.acquiring import NetworkAcquirer

log = logging.getLogger("atm.app")

# With NOTIFY invalidation the terminal registry cache only needs a safety-net expiry.
TERMINAL_STATUS_TTL_NOTIFIED_S = 60.0

# networks after authorization; ops.install adds the database snapshot and pool gauges
EXTENSIONS = ("switch.authorization", "switch.networks", "ops.install")


class SwitchApp:
    """One switch: build it, ``install_extensions()``, then ``await nursery.start(app.run)``."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        hsm: Hsm | None = None,
        metrics: SwitchMetrics | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.hsm = hsm
        # Set by extensions while installing (switch.authorization, switch.networks).
        self.ledger: Ledger | None = None
        self.authorization: Authorization | None = None
        self.networks: NetworkAcquirer | None = None
        self.metrics = metrics or SwitchMetrics()
        self.sessions = SessionRegistry()
        # LISTEN/NOTIFY for cache invalidation; extensions subscribe while installing.
        self.notifications = Notifications(db)
        self.terminals = TerminalDirectory(db, cache_ttl_s=TERMINAL_STATUS_TTL_NOTIFIED_S)
        self.network = NetworkManagement(self.terminals, self.sessions)
        self.dispatcher = Dispatcher(self.network)
        self.server = SwitchServer(
            config.server,
            self.dispatcher,
            self.metrics,
            self.sessions,
            ssl_context=ssl_context or server_tls_context(config.server),
            fatal_errors=fatal_errors(),
        )
        self.metrics.signed_on.set_function(lambda: len(self.sessions))
        self.ops_address: tuple[str, int] | None = None
        self._background: list[BackgroundTask] = []
        self._running = False

    def add_background_task(self, task: BackgroundTask) -> None:
        """Run ``task`` (an async function, optionally taking ``task_status``) beside the server."""
        self._background.append(task)

    def install_extensions(self) -> list[str]:
        """Call ``install(app)`` of every installed extension package; return their names."""
        installed = []
        for name in EXTENSIONS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                raise
            install = getattr(module, "install", None)
            if install is not None:
                install(self)
                installed.append(name)
        return installed

    async def ready(self) -> bool:
        """Ready to take traffic: listening, not shutting down, and PostgreSQL answers."""
        return self._running and bool(self.server.addresses) and await self.db.ping()

    def request_shutdown(self) -> None:
        self._running = False
        self.server.request_shutdown()

    async def run(
        self, *, task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until :meth:`request_shutdown`; ``started(addresses)`` once accepting."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.notifications.run)
            for task in self._background:
                if "task_status" in inspect.signature(task).parameters:
                    await nursery.start(task)
                else:
                    nursery.start_soon(task)
            await self._start_ops(nursery)
            async with trio.open_nursery() as serving:
                addresses = await serving.start(self.server.run)
                self._running = True
                task_status.started(addresses)
            self._running = False
            nursery.cancel_scope.cancel()

    async def _start_ops(self, nursery: trio.Nursery) -> None:
        ops = self.config.ops
        if not ops.metrics_port:
            return
        try:
            self.ops_address = await nursery.start(
                serve_ops, ops.metrics_host, ops.metrics_port, self.metrics, self.ready
            )
        except* OSError as group:  # e.g. port taken by another switch: serve anyway, say so
            # serve_ops's own nursery wraps its bind error in an exception group.
            reasons = "; ".join(str(exc) for exc in group.exceptions)
            log.warning(
                "ops endpoint not started",
                extra={"address": f"{ops.metrics_host}:{ops.metrics_port}", "reason": reasons},
            )


if TYPE_CHECKING:

    def _provides_every_install_port(app: SwitchApp) -> None:
        """Never called: mypy checks here that the app is what each ``install(app)`` takes."""
        ports: tuple[ExtensionHost, AuthorizationHost, NetworksHost] = (app, app, app)
        del ports


def server_tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """TLS 1.2+ (spec 1) when a certificate and key are configured, else None (plain TCP)."""
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key or None)
    if config.tls_client_ca:  # spec 10: terminal certificates, CN bound to field 41 at sign-on
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=config.tls_client_ca)
    return context


def fatal_errors() -> tuple[type[Exception], ...]:
    """Exceptions that must stop the process (a broken ledger invariant), when installed."""
    try:
        from ledger_adapter.errors import InvariantViolation
    except ImportError:
        return ()
    return (InvariantViolation,)
