"""The switch against an outside reference: iso8583sim's approve-all mock issuer, driven by
iso8583sim's own load tool, on the same machine in the same session.

``python -m loadtest.iso8583sim_compare --iso8583sim /path/to/venv/bin/iso8583sim --json``
runs, in alternation (``--rounds``), ``iso8583sim serve`` (no rules: approve all) loaded
with ``iso8583sim load --concurrency 200 --connections 50`` and ``python -m loadtest
--terminals 200`` against the switch, and reports the switch's 0200/s over the mock's
msg/s (issue 22: >= 0.5). iso8583sim is AGPL-licensed, so it is not a dependency of this
project: install it in a virtualenv of its own (``pip install iso8583sim``) and pass its
executable (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
from typing import Any

serve_ready_timeout_s = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + serve_ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"iso8583sim serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"iso8583sim serve did not listen on {port} in {serve_ready_timeout_s} s")


def mock_issuer_rate(executable: str, count: int) -> dict[str, Any]:
    """msg/s of ``iso8583sim load`` (concurrency 200, 50 connections) against its own mock."""
    port = _free_port()
    serve = subprocess.Popen([executable, "serve", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_listening(port, serve)
        done = subprocess.run(
            [executable, "load", "--port", str(port), "--count", str(count),
             "--concurrency", "200", "--connections", "50"],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    return parse_load_output(done.stdout)


def parse_load_output(text: str) -> dict[str, Any]:
    """msg/s and the response-code line from ``iso8583sim load``'s result table."""
    rate = re.search(r"Throughput\D*([\d,.]+)\s*msg/s", text)
    codes = re.search(r"Response codes\s*\S\s*(.+?)\s*\S\s*$", text, re.MULTILINE)
    if rate is None:
        raise SystemExit(f"no throughput in iso8583sim load's output:\n{text}")
    return {"msg_per_s": float(rate.group(1).replace(",", "")),
            "codes": codes.group(1) if codes else None}  # fmt: skip


def switch_rate(duration: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest", "--terminals", "200", "--duration", str(duration),
         "--json"],
        capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return {"tps": result["switch_tps"], "errors": result["errors"],
            "approved_share": result["approved_share"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.iso8583sim_compare",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--iso8583sim", default="iso8583sim", help="its executable")
    parser.add_argument("--count", type=int, default=20_000, help="requests per mock run")
    parser.add_argument("--duration", type=float, default=20.0, help="switch run, seconds")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    if arguments.count < 1 or arguments.duration <= 0 or arguments.rounds < 1:
        parser.error("--count, --duration and --rounds must be positive")
    rounds = []
    for _ in range(arguments.rounds):
        mock = mock_issuer_rate(arguments.iso8583sim, arguments.count)
        switch = switch_rate(arguments.duration)
        rounds.append({"iso8583sim": mock, "switch": switch,
                       "ratio": round(switch["tps"] / mock["msg_per_s"], 3)})  # fmt: skip
    summary = {"rounds": rounds, "ratio_min": min(r["ratio"] for r in rounds)}
    if arguments.json:
        print(json.dumps(summary))
    else:
        for r in rounds:
            print(f"iso8583sim {r['iso8583sim']['msg_per_s']:.0f} msg/s, switch "
                  f"{r['switch']['tps']:.0f} 0200/s: ratio {r['ratio']}")  # fmt: skip


if __name__ == "__main__":
    main()
