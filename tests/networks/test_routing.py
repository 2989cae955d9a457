"""The BIN table: hand-picked overlaps, then properties against a brute-force model (the
longest listed prefix of the PAN wins; no listed prefix -> no route)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.networks.base import NetworkConfigError
from switch.networks.routing import BinTable, Route

prefixes = st.text(alphabet="0123456789", min_size=1, max_size=11)
pans = st.text(alphabet="0123456789", min_size=12, max_size=19)
tables = st.dictionaries(prefixes, st.sampled_from(["a", "b", "c", "d"]), max_size=30)


def model_lookup(routes: dict[str, str], pan: str) -> Route | None:
    matches = [p for p in routes if pan.startswith(p)]
    if not matches:
        return None
    best = max(matches, key=len)
    return Route(best, routes[best])


def test_overlapping_ranges_resolved_by_length() -> None:
    table = BinTable.from_mapping({"4": "wide", "4567": "narrow", "45678901234": "exact"})
    assert table.lookup("4111111111111111") == Route("4", "wide")
    assert table.lookup("4567000000000000") == Route("4567", "narrow")
    assert table.lookup("4567890123456789") == Route("45678901234", "exact")
    assert table.lookup("5111111111111111") is None


@pytest.mark.parametrize(
    "routes",
    [{"": "a"}, {"4a": "a"}, {"123456789012": "a"}, {"4": ""}, {"٤": "a"}],
)
def test_bad_routes_are_refused(routes: dict[str, str]) -> None:
    with pytest.raises(NetworkConfigError):
        BinTable.from_mapping(routes)


def test_a_prefix_is_listed_once() -> None:
    with pytest.raises(NetworkConfigError):
        BinTable([Route("4", "a"), Route("4", "b")])


@settings(max_examples=300)
@given(tables, pans)
def test_lookup_matches_the_model(routes: dict[str, str], pan: str) -> None:
    assert BinTable.from_mapping(routes).lookup(pan) == model_lookup(routes, pan)


@settings(max_examples=200)
@given(tables, prefixes, pans)
def test_a_pan_under_a_listed_prefix_is_routed_at_least_that_specifically(
    routes: dict[str, str], prefix: str, rest: str
) -> None:
    routes = routes | {prefix: "z"}
    pan = (prefix + rest)[:19]
    found = BinTable.from_mapping(routes).lookup(pan)
    assert found is not None and pan.startswith(found.prefix)
    assert len(found.prefix) >= len(prefix)


@settings(max_examples=200)
@given(tables, pans)
def test_empty_table_and_removal(routes: dict[str, str], pan: str) -> None:
    """With no routes nothing is routed; dropping the winning route never makes the result
    more specific."""
    assert BinTable().lookup(pan) is None
    found = BinTable.from_mapping(routes).lookup(pan)
    if found is not None:
        rest = {p: n for p, n in routes.items() if p != found.prefix}
        after = BinTable.from_mapping(rest).lookup(pan)
        assert after is None or len(after.prefix) < len(found.prefix)
