"""/metrics, /healthz and /readyz over HTTP; the exposition passes ``promtool check metrics``."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import partial

import pytest
import trio

from ops.http import serve_ops
from ops.metrics import SwitchMetrics


async def http_get(address: tuple[str, int], path: str, method: str = "GET") -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream(*address)
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    await stream.send_all(request.encode())
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            received += chunk
    await stream.aclose()
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def exercised_metrics() -> SwitchMetrics:
    metrics = SwitchMetrics()
    metrics.observe_request("0200", "011000", "00", "0200", 0.004)
    metrics.observe_request("0800", None, "58", "0800", 0.001)
    metrics.observe_request("0100", "99zz00", "xx", "other", 0.001)  # junk collapses to "other"
    metrics.protocol_error("format")
    metrics.connections_open_now += 1
    return metrics


async def test_endpoints(nursery: trio.Nursery) -> None:
    metrics = exercised_metrics()
    ready = False

    async def readiness() -> bool:
        return ready

    address = await nursery.start(
        partial(serve_ops, readiness_ttl_s=0.0), "127.0.0.1", 0, metrics, readiness
    )
    status, body = await http_get(address, "/metrics")
    assert status == 200
    assert b'atm_requests_total{mti="0200",processing_code="011000",response_code="00"} 1.0' in body
    assert (
        b'atm_requests_total{mti="other",processing_code="other",response_code="other"} 1.0' in body
    )
    assert b'atm_protocol_errors_total{kind="format"} 1.0' in body
    assert b"atm_request_duration_seconds_bucket" in body
    assert await http_get(address, "/healthz") == (200, b"ok\n")
    assert (await http_get(address, "/readyz"))[0] == 503
    ready = True
    assert (await http_get(address, "/readyz"))[0] == 200
    assert (await http_get(address, "/nope"))[0] == 404
    assert (await http_get(address, "/metrics", "POST"))[0] == 405
    assert await http_get(address, "/healthz", "HEAD") == (200, b"")


def test_promtool_accepts_the_exposition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI: .ci/run must apt-get install prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does)")
    exposition = exercised_metrics().exposition()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
