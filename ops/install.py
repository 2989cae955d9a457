"""Wire the operations metrics into a running switch: ``install(app)``.

Kept in ``ops`` so the switch core needs one line to get them (``"ops.install"`` in
``switch.app.EXTENSIONS``, or a call from ``serve``): the database snapshot collector and its
refresh task, the pool gauges, and the TLS certificate's expiry. The hot-path observations
(per-stage latency, batch sizes, reversals, MAC failures, key exchanges, link state) are calls
to ``SwitchMetrics`` helpers made where those events happen (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import trio

from ops.metrics_snapshot import DatabaseSnapshot
from switch.ports import ExtensionHost


def install(app: ExtensionHost) -> DatabaseSnapshot:
    """``app`` is a ``switch.app.SwitchApp``, seen through the :class:`ExtensionHost` port so
    ops depends on what it uses, not on the core's app class."""
    metrics = app.metrics
    snapshot = DatabaseSnapshot(metrics.registry)

    async def refresh_snapshot(task_status: trio.TaskStatus[None]) -> None:
        await snapshot.run(app.db, task_status=task_status)

    app.add_background_task(refresh_snapshot)
    pool = app.db.pool
    # asyncpg's size getters read counters of the pool object; no I/O at scrape time.
    metrics.set_pool_stats(
        lambda: (pool.get_size() - pool.get_idle_size(), pool.get_idle_size(),
                 pool.get_max_size()))
    cert = app.config.server.tls_cert
    if cert:
        metrics.set_tls_certificate_expiry(certificate_expiry(Path(cert)))
    return snapshot


def certificate_expiry(path: Path) -> float:
    """The certificate's notAfter as Unix time (the first certificate of a PEM chain)."""
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.not_valid_after_utc.timestamp()
