"""The ops endpoint on the shared ASGI stack: /readyz is cached (a probe storm is not a
database storm) and the port refuses connections over its cap with a fast 503."""

from __future__ import annotations

import trio

from ops.http import serve_ops
from ops.metrics import SwitchMetrics


async def get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream(*address)
    try:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                              .encode())
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                received += chunk
    finally:
        await stream.aclose()
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_readyz_asks_the_readiness_check_once_per_ttl(nursery: trio.Nursery) -> None:
    calls = 0

    async def readiness() -> bool:
        nonlocal calls
        calls += 1
        return True

    address = await nursery.start(
        lambda task_status: serve_ops("127.0.0.1", 0, SwitchMetrics(), readiness,
                                      readiness_ttl_s=3600.0, task_status=task_status))
    for _ in range(20):
        assert (await get(address, "/readyz"))[0] == 200
    assert calls == 1


async def test_connections_over_the_cap_get_503(nursery: trio.Nursery) -> None:
    async def readiness() -> bool:
        return True

    address = await nursery.start(
        lambda task_status: serve_ops("127.0.0.1", 0, SwitchMetrics(), readiness,
                                      connections_max=2, task_status=task_status))
    idle = [await trio.open_tcp_stream(*address) for _ in range(2)]  # hold both slots
    await trio.sleep(0.2)  # let the server accept them (real TCP: no mock clock here)
    status, body = await get(address, "/healthz")
    assert (status, body) == (503, b"too popular\n")
    for stream in idle:
        await stream.aclose()
    with trio.fail_after(10):
        while (await get(address, "/healthz"))[0] != 200:
            await trio.sleep(0.05)
