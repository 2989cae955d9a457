"""Card networks: BIN routing, outbound links, store-and-forward of advices, stand-in.

``install(app)`` is called by ``switch/app.py`` after ``switch.authorization``: with no
``[networks]`` configuration it does nothing at all (a card not on file stays ``14``, ``92`` is
never produced); otherwise it builds the configured networks, plugs the
:class:`~switch.networks.acquiring.NetworkAcquirer` into the authorization pipeline and runs
the links and store-and-forward senders beside the server. See docs/networks.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

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
from switch.ports import ExtensionHost

if TYPE_CHECKING:
    from switch.authorization.service import Authorization
    from switch.networks.acquiring import NetworkAcquirer
    from switch.networks.registry import RegisteredNetwork

log = logging.getLogger("atm.networks")


class NetworksHost(ExtensionHost, Protocol):
    """What :func:`install` uses of the app (``switch.app.SwitchApp`` implements it)."""

    # Installed before the networks (``switch.app.EXTENSIONS``); None: not installed.
    authorization: Authorization | None
    # Set by install: the acquirer, when networks are configured.
    networks: NetworkAcquirer | None


def install(app: NetworksHost) -> NetworkAcquirer | None:
    """Wire the configured networks into ``app``; returns the acquirer, or None if none."""
    config = app.config.networks
    if not config.routes and not config.instances:
        return None
    from switch.networks.acquiring import NetworkAcquirer
    from switch.networks.registry import build_registry

    authorization = app.authorization
    if authorization is None:
        raise NetworkConfigError("card networks need switch.authorization installed first")
    hsm = app.hsm
    if hsm is None:
        raise NetworkConfigError("card networks need an HSM: build the app with hsm=...")
    registry = build_registry(config, NetworkServices(hsm=hsm))
    acquirer = NetworkAcquirer(registry, db=app.db, hsm=hsm)
    authorization.ctx.networks = acquirer
    app.networks = acquirer
    # Link state read at scrape time (bounded: configured networks).
    for name, registered in registry.networks.items():
        app.metrics.network_link_up.labels(network=name).set_function(_link_up(registered))
    app.add_background_task(acquirer.run)
    log.info("card networks installed", extra={"networks": sorted(registry.networks),
                                               "routes": len(registry.table)})
    return acquirer


def _link_up(registered: RegisteredNetwork) -> Callable[[], float]:
    return lambda: 1.0 if registered.status is NetworkStatus.SIGNED_ON else 0.0


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
    "NetworksHost",
    "install",
]
