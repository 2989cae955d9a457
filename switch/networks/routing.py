"""The BIN table: which network a PAN belongs to, by its longest matching prefix.

Pure: built once from ``[networks.routes]`` and asked per request. Prefixes are 1-11 digits
(ISO/IEC 7812 issuer identification numbers are 6 or 8 digits; some networks route on longer
account ranges). Overlapping ranges are resolved by length: ``4`` -> A and ``4567`` -> B send
``4567...`` to B and every other ``4...`` to A. A prefix is listed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from switch.networks.base import NetworkConfigError

prefix_digits_min: Final = 1
prefix_digits_max: Final = 11  # longer prefixes would be most of a PAN: refuse them
network_name_chars_max: Final = 32


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    network: str


def _check_route(prefix: str, network: str) -> None:
    if not (prefix.isascii() and prefix.isdigit()):
        raise NetworkConfigError(f"route prefix {prefix!r} is not all digits")
    if not prefix_digits_min <= len(prefix) <= prefix_digits_max:
        raise NetworkConfigError(
            f"route prefix {prefix!r} must have {prefix_digits_min}-{prefix_digits_max} digits"
        )
    if not network or len(network) > network_name_chars_max or not network.isprintable():
        raise NetworkConfigError(f"route {prefix!r} names no valid network: {network!r}")


class BinTable:
    """Longest-prefix match from PAN prefixes to network names."""

    __slots__ = ("_by_prefix", "_lengths")

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        by_prefix: dict[str, str] = {}
        for route in routes:
            _check_route(route.prefix, route.network)
            if route.prefix in by_prefix:
                raise NetworkConfigError(f"route prefix {route.prefix!r} is listed twice")
            by_prefix[route.prefix] = route.network
        self._by_prefix = by_prefix
        # Only the lengths in use are tried, longest first: at most 11 dict lookups.
        self._lengths = tuple(sorted({len(prefix) for prefix in by_prefix}, reverse=True))

    @classmethod
    def from_mapping(cls, routes: Mapping[str, str]) -> BinTable:
        return cls(Route(str(prefix), str(network)) for prefix, network in routes.items())

    def __len__(self) -> int:
        return len(self._by_prefix)

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(Route(p, n) for p, n in sorted(self._by_prefix.items()))

    def lookup(self, pan: str) -> Route | None:
        """The route of the longest prefix of ``pan``, or None (the card is routed nowhere)."""
        for length in self._lengths:
            if length > len(pan):
                continue
            network = self._by_prefix.get(pan[:length])
            if network is not None:
                return Route(pan[:length], network)
        return None
