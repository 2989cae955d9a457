"""Which networks exist and which one a card goes to.

Plug-in classes are found by ``kind``: the built-ins below, then every entry point of the
``atm_switch.networks`` group (``importlib.metadata``); a plug-in cannot replace a built-in.
Each ``[networks.instances.NAME]`` entry builds one network; ``[networks.routes]`` feeds the
BIN table.

Routing answers one of three things (docs/networks.md, "91 or 92"):

* :class:`NotRouted` -- no prefix matches: the card stays ``14`` exactly as with no networks;
* :class:`Unroutable` -- a route names a network that is not registered (no such instance, its
  plug-in is not installed, or it failed to build) or is signed off: ``92``;
* :class:`Routed` -- a network that should take the card (it may still be down: ``91``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Final

import trio

from switch.config import NetworksConfig
from switch.networks.base import (
    CardNetwork,
    NetworkConfigError,
    NetworkFactory,
    NetworkServices,
    NetworkStatus,
)
from switch.networks.routing import BinTable
from switch.networks.store_forward import RetryPolicy

log = logging.getLogger("atm.networks")

ENTRY_POINT_GROUP: Final = "atm_switch.networks"
BUILTIN_KINDS: Final[Mapping[str, str]] = {
    "iso_host": "switch.networks.iso_host:IsoHostNetwork.from_options",
}
# Options every network has; the rest go to the plug-in.
COMMON_OPTIONS: Final = frozenset(
    {"kind", "enabled", "zpk", "pin_block_format", "stand_in_floor_minor", "stand_in_pvk",
     "stand_in_daily_max_minor", "stand_in_daily_count_max", "stand_in_pvki",
     "stand_in_pin_tries_max",
     "advice_retry_min_s", "advice_retry_max_s"}
)


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """The options the switch itself applies to any network."""

    name: str
    kind: str
    enabled: bool = True
    # The network's zone PIN key (LMK handle): terminal PIN blocks are translated to it.
    zpk: str | None = None
    pin_block_format: int = 0
    # Stand-in: approve withdrawals up to this amount when the network is down (None: never).
    stand_in_floor_minor: int | None = None
    advice_retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Stand-in per card and UTC day (switch/networks/stand_in.py).
    stand_in_daily_max_minor: int | None = None
    stand_in_daily_count_max: int = 1
    # The network's PIN verification key for stand-in (LMK handle, usage V2: Visa PVV): with it
    # a PIN-bearing withdrawal can stand in, its PIN checked against the PVV in track 2.
    stand_in_pvk: str | None = None
    # The key index (PVKI, track 2) the configured PVK answers to: a card naming another is
    # not checked (91, never 55).
    stand_in_pvki: str = "1"
    # Wrong stand-in PINs per card (PAN hash) and UTC day before 75 (no PIN evaluated).
    stand_in_pin_tries_max: int = 3


@dataclass(slots=True)
class RegisteredNetwork:
    settings: NetworkSettings
    network: CardNetwork

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def status(self) -> NetworkStatus:
        if not self.settings.enabled:
            return NetworkStatus.SIGNED_OFF
        return self.network.status


@dataclass(frozen=True, slots=True)
class NotRouted:
    pass


@dataclass(frozen=True, slots=True)
class Unroutable:
    network: str
    reason: str


@dataclass(frozen=True, slots=True)
class Routed:
    network: RegisteredNetwork


RouteDecision = NotRouted | Unroutable | Routed


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _loader(target: str) -> Callable[[], NetworkFactory]:
    def load() -> NetworkFactory:
        factory: NetworkFactory = _load(target)
        return factory

    return load


def available_kinds() -> dict[str, Callable[[], NetworkFactory]]:
    """``kind`` -> loader of its factory: built-ins, then installed entry points."""
    kinds: dict[str, Callable[[], NetworkFactory]] = {
        kind: _loader(target) for kind, target in BUILTIN_KINDS.items()
    }
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_KINDS:
            log.warning("network plug-in ignored: built-in kind", extra={"kind": entry.name})
            continue
        kinds[entry.name] = entry.load
    return kinds


def _number(options: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NetworkConfigError(f"{key} must be a number, not {value!r}")
    try:
        return kind(value)
    except ValueError as exc:
        raise NetworkConfigError(f"{key} must be a number, not {value!r}") from exc


def network_settings(name: str, options: Mapping[str, Any]) -> NetworkSettings:
    """The common options of one ``[networks.instances.NAME]`` entry, checked."""
    kind = options.get("kind")
    if not isinstance(kind, str) or not kind:
        raise NetworkConfigError(f"network {name!r} needs a kind (its plug-in)")
    enabled = options.get("enabled", True)
    if not isinstance(enabled, bool):
        raise NetworkConfigError(f"network {name!r}: enabled must be true or false")
    fmt = _number(options, "pin_block_format", int, 0)
    if fmt not in (0, 1, 3, 4):
        raise NetworkConfigError(f"network {name!r}: pin_block_format must be 0, 1, 3 or 4")
    floor = _number(options, "stand_in_floor_minor", int, None)
    if floor is not None and floor < 0:
        raise NetworkConfigError(f"network {name!r}: stand_in_floor_minor must be >= 0")
    zpk = options.get("zpk")
    if zpk is not None and not isinstance(zpk, str):
        raise NetworkConfigError(f"network {name!r}: zpk must be an LMK key block (text)")
    retry = RetryPolicy(
        _number(options, "advice_retry_min_s", float, 1.0),
        _number(options, "advice_retry_max_s", float, 60.0),
    )
    if retry.min_s <= 0 or retry.max_s < retry.min_s:
        raise NetworkConfigError(f"network {name!r}: advice retry delays are out of order")
    daily_max = _number(options, "stand_in_daily_max_minor", int, None)
    daily_count = _number(options, "stand_in_daily_count_max", int, 1)
    if (daily_max is not None and daily_max < 0) or daily_count < 0:
        raise NetworkConfigError(f"network {name!r}: stand-in daily limits must be >= 0")
    pvk = options.get("stand_in_pvk")
    if pvk is not None and not isinstance(pvk, str):
        raise NetworkConfigError(f"network {name!r}: stand_in_pvk must be an LMK key block (text)")
    pvki = str(options.get("stand_in_pvki", "1"))
    if len(pvki) != 1 or not "1" <= pvki <= "6":
        raise NetworkConfigError(f"network {name!r}: stand_in_pvki must be one digit 1-6")
    tries = _number(options, "stand_in_pin_tries_max", int, 3)
    if tries < 1:
        raise NetworkConfigError(f"network {name!r}: stand_in_pin_tries_max must be >= 1")
    return NetworkSettings(name, kind, enabled, zpk, fmt, floor, retry, daily_max, daily_count,
                           pvk, pvki, tries)


class NetworkRegistry:
    """The configured networks and the BIN table; answers :meth:`route`."""

    def __init__(self, table: BinTable, networks: Mapping[str, RegisteredNetwork]) -> None:
        self.table = table
        self.networks = dict(networks)

    def route(self, pan: str) -> RouteDecision:
        route = self.table.lookup(pan)
        if route is None:
            return NotRouted()
        registered = self.networks.get(route.network)
        if registered is None:
            return Unroutable(route.network, "not registered")
        if registered.status is NetworkStatus.SIGNED_OFF:
            return Unroutable(route.network, "signed off")
        return Routed(registered)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every enabled network's links; ``started()`` once each made its first try."""
        async with trio.open_nursery() as nursery:
            for registered in self.networks.values():
                if registered.settings.enabled:
                    await nursery.start(registered.network.run)
            task_status.started()


def build_registry(
    config: NetworksConfig,
    services: NetworkServices,
    kinds: Mapping[str, Callable[[], NetworkFactory]] | None = None,
) -> NetworkRegistry:
    """Build every configured network. A bad option raises :class:`NetworkConfigError`; a
    network whose plug-in is not installed is left unregistered (its routes answer ``92``)."""
    table = BinTable.from_mapping(config.routes)
    kinds = available_kinds() if kinds is None else kinds
    built: dict[str, RegisteredNetwork] = {}
    for name, options in config.instances.items():
        if not isinstance(options, Mapping):
            raise NetworkConfigError(f"[networks.instances.{name}] must be a table")
        settings = network_settings(name, options)
        loader = kinds.get(settings.kind)
        if loader is None:
            log.error("network not registered: unknown kind",
                      extra={"network": name, "kind": settings.kind})
            continue
        plugin_options = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
        network = loader()(name, plugin_options, services)
        built[name] = RegisteredNetwork(settings, network)
    for route in table.routes:
        if route.network not in built:
            log.warning("route to a network that is not registered (answers 92)",
                        extra={"prefix": route.prefix, "network": route.network})
    return NetworkRegistry(table, built)
