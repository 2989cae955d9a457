"""The terminal registry cache (switch/netmgmt.py): while PostgreSQL cannot be read, the status
last read stands, so a signed-on terminal's 0200 reaches the handler that records its 91
(spec 5.6) instead of being answered an unrecorded 91 at the gate (simulation seed 20261347;
the catalogue history ``repeat_of_a_91_from_the_terminal_gate`` checks it end to end)."""

from __future__ import annotations

from typing import Any

import pytest

from switch.db.runtime import DatabaseUnavailable
from switch.netmgmt import TerminalDirectory


class Registry:
    """A stand-in for the database: the registry's rows, or an outage."""

    def __init__(self) -> None:
        self.rows = {"ATM001": "enabled"}
        self.down = False
        self.reads = 0

    async def fetch(self, _query: str, ids: list[str]) -> list[dict[str, Any]]:
        self.reads += 1
        if self.down:
            raise DatabaseUnavailable("connection refused")
        return [{"terminal_id": i, "status": self.rows[i]} for i in ids if i in self.rows]


@pytest.fixture
def registry() -> Registry:
    return Registry()


def directory_over(registry: Registry, now: list[float]) -> TerminalDirectory:
    return TerminalDirectory(registry, cache_ttl_s=2.0, clock=lambda: now[0])  # type: ignore[arg-type]


async def test_the_last_status_read_stands_while_postgresql_is_down(registry: Registry) -> None:
    now = [0.0]
    directory = directory_over(registry, now)
    assert await directory.status("ATM001", max_age_s=0.0) == "enabled"  # the sign-on's read
    directory.clear()  # the NOTIFY listener lost its connection
    directory.invalidate("ATM001")  # and a NOTIFY (a key exchange) came before that
    registry.down = True
    now[0] = 10.0  # long past the TTL
    assert await directory.status("ATM001", max_age_s=2.0) == "enabled"
    assert registry.reads == 2  # it did try PostgreSQL first


async def test_postgresql_answers_again_and_wins(registry: Registry) -> None:
    now = [0.0]
    directory = directory_over(registry, now)
    assert await directory.status("ATM001", max_age_s=0.0) == "enabled"
    registry.rows["ATM001"] = "disabled"
    now[0] = 10.0
    assert await directory.status("ATM001", max_age_s=2.0) == "disabled"
    registry.down = True
    now[0] = 20.0
    assert await directory.status("ATM001", max_age_s=2.0) == "disabled"


async def test_a_terminal_never_read_is_still_unavailable(registry: Registry) -> None:
    directory = directory_over(registry, [0.0])
    registry.down = True
    with pytest.raises(DatabaseUnavailable):
        await directory.status("ATM001", max_age_s=2.0)


async def test_a_sign_on_reads_the_registry_afresh_or_fails(registry: Registry) -> None:
    """A sign-on never uses the last status (disabling takes effect at the next sign-on)."""
    now = [0.0]
    directory = directory_over(registry, now)
    assert await directory.status("ATM001", max_age_s=0.0) == "enabled"
    registry.down = True
    now[0] = 0.5
    with pytest.raises(DatabaseUnavailable):
        await directory.status("ATM001", max_age_s=0.0, last_known_ok=False)
