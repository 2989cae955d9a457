"""Card networks: BIN routing, outbound links, store-and-forward of advices, stand-in.

``install(app)`` is called by ``switch/app.py`` after ``switch.authorization``: with no
``[networks]`` configuration it does nothing at all (a card not on file stays ``14``, ``92`` is
never produced); otherwise it builds the configured networks, plugs the
:class:`~switch.networks.acquiring.NetworkAcquirer` into the authorization pipeline and runs
the links and store-and-forward senders beside the server. See docs/networks.md.
"""

from __future__ import annotations

import logging
from typing import Any

from switch.networks.base import (
    AdviceKind,
    CardNetwork,
    NetworkAdvice,
    NetworkAnswer,
    NetworkAuthorization,
    NetworkConfigError,
    NetworkError,
    NetworkProtocolError,
    NetworkServices,
    NetworkSignedOff,
    NetworkStatus,
    NetworkUnavailable,
)

log = logging.getLogger("atm.networks")


def install(app: Any) -> Any:
    """Wire the configured networks into ``app``; returns the acquirer, or None if none."""
    config = app.config.networks
    if not config.routes and not config.instances:
        return None
    from switch.networks.acquiring import NetworkAcquirer
    from switch.networks.registry import build_registry

    authorization = getattr(app, "authorization", None)
    if authorization is None:
        raise NetworkConfigError("card networks need switch.authorization installed first")
    registry = build_registry(config, NetworkServices(hsm=app.hsm))
    acquirer = NetworkAcquirer(registry, db=app.db, hsm=app.hsm)
    authorization.ctx.networks = acquirer
    app.networks = acquirer
    metrics = getattr(app, "metrics", None)
    if metrics is not None:  # link state read at scrape time (bounded: configured networks)
        for name, registered in registry.networks.items():
            metrics.network_link_up.labels(network=name).set_function(
                lambda r=registered: 1.0 if r.status is NetworkStatus.SIGNED_ON else 0.0
            )
    app.add_background_task(acquirer.run)
    log.info("card networks installed", extra={"networks": sorted(registry.networks),
                                               "routes": len(registry.table)})
    return acquirer


__all__ = [
    "AdviceKind",
    "CardNetwork",
    "NetworkAdvice",
    "NetworkAnswer",
    "NetworkAuthorization",
    "NetworkConfigError",
    "NetworkError",
    "NetworkProtocolError",
    "NetworkServices",
    "NetworkSignedOff",
    "NetworkStatus",
    "NetworkUnavailable",
    "install",
]
