"""Issue 11 item 6: the ops HTTP endpoint caps its connections and /readyz does not query the
database on every call (real TCP against ``serve_ops``)."""

from __future__ import annotations

import trio
from prometheus_client import CollectorRegistry

from ops.http import CONNECTIONS_MAX, serve_ops
from ops.metrics import SwitchMetrics


async def get(address: tuple[str, int], path: str) -> bytes:
    stream = await trio.open_tcp_stream(*address)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    return data


async def test_readyz_is_cached_and_connections_are_capped(nursery: trio.Nursery) -> None:
    checks = 0

    async def ready() -> bool:
        nonlocal checks
        checks += 1
        return True

    address = await nursery.start(serve_ops, "127.0.0.1", 0, SwitchMetrics(CollectorRegistry()),
                                  ready)
    answers = [await get(address, "/readyz") for _ in range(20)]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    assert checks == 1  # 20 probes within a second: one database check
    await trio.sleep(1.1)
    await get(address, "/readyz")
    assert checks == 2
    # Hold CONNECTIONS_MAX idle connections: one more is closed at once without an answer,
    # and the endpoint serves again once they go.
    idle = [await trio.open_tcp_stream(*address) for _ in range(CONNECTIONS_MAX)]
    await trio.sleep(0.2)
    extra = await trio.open_tcp_stream(*address)
    with trio.fail_after(2):
        assert await extra.receive_some(100) == b""
    for stream in idle:
        await stream.aclose()
    await trio.sleep(0.2)
    assert (await get(address, "/healthz")).startswith(b"HTTP/1.1 200")


async def test_not_ready_probes_share_one_check(nursery: trio.Nursery) -> None:
    # Goal: with the database slow and down, 10 simultaneous probes cost about one check each
    # round, not ten queries piling up.
    checks = 0

    async def slow_not_ready() -> bool:
        nonlocal checks
        checks += 1
        await trio.sleep(0.3)
        return False

    address = await nursery.start(serve_ops, "127.0.0.1", 0, SwitchMetrics(CollectorRegistry()),
                                  slow_not_ready)
    answers: list[bytes] = []

    async def probe() -> None:
        answers.append(await get(address, "/readyz"))

    async with trio.open_nursery() as probes:
        for _ in range(10):
            probes.start_soon(probe)
    assert len(answers) == 10 and all(a.startswith(b"HTTP/1.1 503") for a in answers)
    assert checks <= 2
