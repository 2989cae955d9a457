"""1,000 concurrent terminal connections, each signing on and echoing 10 times, over real TCP.

Goal: the server holds many connections at once without losing or mismatching a
response. Method: one client task per terminal (the terminal-side HostConnection),
all started together; every answer must be 00 and carry the terminal's own 41 and STAN.
"""

from __future__ import annotations

import resource

import pytest
import trio

from switch.db.runtime import Database
from tests.core.conftest import StartSwitch, connect, register_terminals

TERMINALS = 1000
ECHOES = 10


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * TERMINALS + 256  # client + server side of each connection, plus slack
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@pytest.mark.slow
async def test_thousand_terminals_sign_on_and_echo(start_switch: StartSwitch, db: Database) -> None:
    terminal_ids = [f"T{n:07d}" for n in range(TERMINALS)]
    await register_terminals(db, *terminal_ids)
    # All connect before any signs on: raise spec 10's not-signed-on cap (default 64) for that.
    # All from 127.0.0.1 (as ATMs behind one NAT address): both caps raised to fit them.
    app = await start_switch(not_signed_on_max=TERMINALS, not_signed_on_per_address_max=TERMINALS)
    results: dict[str, list[str]] = {}
    all_connected = trio.Event()
    go = trio.Event()
    connected = 0

    async def terminal(terminal_id: str) -> None:
        nonlocal connected
        async with connect(app, terminal_id) as link:
            connected += 1
            if connected == TERMINALS:
                all_connected.set()
            await go.wait()  # every connection is open on both sides before any traffic
            codes = [(await link.sign_on()).response_code or ""]
            for _ in range(ECHOES):
                echo = await link.echo()
                assert echo.terminal_id == terminal_id
                codes.append(echo.response_code or "")
            results[terminal_id] = codes

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for terminal_id in terminal_ids:
                nursery.start_soon(terminal, terminal_id)
            await all_connected.wait()
            while app.server.connection_count < TERMINALS:  # accepted by the server too
                await trio.sleep(0.01)
            go.set()
    assert len(results) == TERMINALS
    failures = {t: codes for t, codes in results.items() if codes != ["00"] * (ECHOES + 1)}
    assert not failures
    assert app.metrics.sample(
        "atm_requests_total", mti="0800", processing_code="none", response_code="00"
    ) == (TERMINALS * (ECHOES + 1))
