"""The CLI: ``terminals add|enable|disable|list`` and ``serve`` as a real subprocess.

The serve tests talk to the switch with an independent client: raw sockets and
hand-written frames, not the project's own codec.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.cli import main

SIGN_ON = b"0800822000000080000004000000000000000615103000000001%s001"
ECHO = b"0800822000000080000004000000000000000615103100000002%s301"


def cli(*args: str) -> int:
    return main(list(args))


def test_terminals_commands(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data-dir", str(tmp_path), "--dsn", pg_dsn]
    assert cli("terminals", "add", "ATM00001", *common[2:], "--data-dir", str(tmp_path)) == 0
    assert "terminal ATM00001 added (tdes, enabled)" in capsys.readouterr().out
    assert cli("terminals", "add", "ATM00002", "--key-type", "aes", "--disabled", *common) == 0
    assert cli("terminals", "add", "ATM00001", *common) == 1
    assert "already registered" in capsys.readouterr().err
    assert cli("terminals", "add", "TOO-LONG-ID", *common) == 2
    assert "1-8 printable ASCII" in capsys.readouterr().err
    assert cli("terminals", "disable", "ATM00001", *common) == 0
    capsys.readouterr()
    assert cli("terminals", "disable", "ATM00001", *common) == 1  # issue 20: a no-op is said
    assert "already disabled: nothing changed" in capsys.readouterr().err
    assert cli("terminals", "enable", "ATM00002", *common) == 0
    assert cli("terminals", "enable", "NOPE", *common) == 1
    capsys.readouterr()
    assert cli("terminals", "list", "--json", *common) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"terminal_id": "ATM00001", "status": "disabled", "key_type": "tdes"},
        {"terminal_id": "ATM00002", "status": "enabled", "key_type": "aes"},
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def frame_exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(struct.pack(">H", len(message)) + message)
    header = recv_exactly(sock, 2)
    return recv_exactly(sock, struct.unpack(">H", header)[0])


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def response_code_0810(response: bytes) -> bytes:
    # 0810 with bitmap 8220000002800000 + 0400000000000000: 7 (10) 11 (6) then 39 (2).
    assert response[:4] == b"0810" and response[4:20] == b"8220000002800000"
    return response[36 + 16 : 36 + 18]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, **extra_env: str) -> tuple[subprocess.Popen[str], str, int]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra_env}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "switch.cli",
                "serve",
                "--data-dir",
                str(tmp_path),
                "--port",
                "0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening "):
            process.kill()
            raise AssertionError(
                f"no listening line: {line!r} {process.stderr.read() if process.stderr else ''}"
            )
        host, port = line.split()[1].rsplit(":", 1)
        return process, host, int(port)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.slow
def test_serve_signs_on_echoes_scrapes_and_stops_on_sigterm(
    pg_dsn: str, tmp_path: Path, serve
) -> None:  # type: ignore[no-untyped-def]
    assert cli("terminals", "add", "ATM00001", "--data-dir", str(tmp_path), "--dsn", pg_dsn) == 0
    metrics_port = free_port()
    process, host, port = serve("--dsn", pg_dsn, "--metrics-port", str(metrics_port))
    with socket.create_connection((host, port), timeout=10) as sock:
        assert response_code_0810(frame_exchange(sock, SIGN_ON % b"ATM00001")) == b"00"
        assert response_code_0810(frame_exchange(sock, ECHO % b"ATM00001")) == b"00"
    with socket.create_connection((host, port), timeout=10) as sock:
        assert response_code_0810(frame_exchange(sock, SIGN_ON % b"STRANGER")) == b"58"
    base = f"http://127.0.0.1:{metrics_port}"
    assert urllib.request.urlopen(base + "/healthz", timeout=10).status == 200
    assert urllib.request.urlopen(base + "/readyz", timeout=10).status == 200
    exposition = urllib.request.urlopen(base + "/metrics", timeout=10).read()
    assert (
        b'atm_requests_total{mti="0800",processing_code="none",response_code="58"} 1.0'
        in exposition
    )
    promtool = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


@pytest.mark.slow
def test_serve_alone_on_a_fresh_machine(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    # No DSN: serve refuses an uninitialised data directory (issue 11 item 6) and creates
    # nothing there; after `db init` (migrations and LMK, as the owner) it serves.
    refused = subprocess.run(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0 and "atm-switch db init" in refused.stderr
    assert "Traceback" not in refused.stderr and list(tmp_path.iterdir()) == []
    assert cli("db", "init", "--data-dir", str(tmp_path)) == 0
    # A production installation (no --mode test): plain TCP toward terminals only when the
    # configuration says so (issue 18); refused with one clear line otherwise.
    refused = subprocess.run(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(tmp_path), "--port", "0",
         "--metrics-port", "0"], capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0 and "server.plain_tcp = true" in refused.stderr
    assert "Traceback" not in refused.stderr
    started = time.monotonic()
    process, host, port = serve("--metrics-port", "0", ATM_SWITCH_SERVER_PLAIN_TCP="true")
    with socket.create_connection((host, port), timeout=10) as sock:
        assert (
            response_code_0810(frame_exchange(sock, SIGN_ON % b"ATM00001")) == b"58"
        )  # not registered
    assert (tmp_path / "pg").is_dir()
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_serve_serves_terminals_when_its_ops_port_is_taken(
    pg_dsn: str, tmp_path: Path, serve
) -> None:  # type: ignore[no-untyped-def]
    # docs/operations.md: a taken ops port is a warning naming that port, and terminals are
    # served anyway. The switch used to exit, blaming the terminal port ("cannot listen on
    # <terminal port>"), and one such worker failed a whole `serve --workers N` start.
    assert cli("terminals", "add", "ATM00001", "--data-dir", str(tmp_path), "--dsn", pg_dsn) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ops_port = taken.getsockname()[1]
        process, host, port = serve("--dsn", pg_dsn, "--metrics-port", str(ops_port))
        with socket.create_connection((host, port), timeout=10) as sock:
            assert response_code_0810(frame_exchange(sock, SIGN_ON % b"ATM00001")) == b"00"
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    stderr = process.stderr.read()
    assert "ops endpoint not started" in stderr, stderr
    assert f"cannot listen on the ops endpoint 127.0.0.1:{ops_port}" in stderr, stderr
