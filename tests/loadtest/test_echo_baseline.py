"""The echo baseline answers like the switch in shape and size, over real TCP, and the
whole generator (several processes, merged HDR histograms) runs against it end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import trio

from loadtest.echo_server import echo_response, serve
from loadtest.flows import LoadTerminal, Recorder
from loadtest.messages import Kind, MessageFactory
from loadtest.mix import Mix, MixChooser
from loadtest.population import terminal
from loadtest.session import Session
from loadtest.stats import PhaseStats
from loadtest.terminal_crypto import TerminalCrypto
from loadtest.wire import decode_message


def test_echo_response_mirrors_the_mti_copies_fields_and_adds_39() -> None:
    factory = MessageFactory(terminal(1, 5), TerminalCrypto(bytes(16), bytes(range(16))))
    request, original = factory.financial(Kind.WITHDRAWAL, b"000007", 10_000)
    mti, fields = decode_message(echo_response(request))
    assert mti == b"0210"
    assert fields == decode_message(request)[1] | {39: b"00"}
    reversal = factory.advice(Kind.REVERSAL, original, b"000008", reason=b"22")
    mti, fields = decode_message(echo_response(reversal))
    assert mti == b"0430" and fields[39] == b"00" and 128 in fields  # MAC-sized field kept


async def test_terminals_run_transactions_against_the_echo_server_over_tcp() -> None:
    import random

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, "127.0.0.1", 0)
        stats = PhaseStats(duration_s=1.0)
        recorder = Recorder()
        now = trio.current_time()
        recorder.begin(stats, now, now + 60)
        chooser = MixChooser(Mix(reversal_share=0.5), random.Random(7))
        for index in range(3):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            session = Session(stream, random.Random(index))
            nursery.start_soon(session.read_responses)
            load_terminal = LoadTerminal(
                terminal(index, 3), session, recorder, response_timeout_s=5, verify_mac=False
            )
            await load_terminal.setup(key_exchange=False, seed="t")
            for _ in range(20):
                await load_terminal.transaction(chooser, trio.current_time())
            await session.aclose()
        nursery.cancel_scope.cancel()
    assert stats.financial_answered() == 60 and stats.errors() == 0
    assert stats.outcomes["completion"]["00"] + stats.outcomes["reversal"]["00"] > 0
    assert stats.histograms["all_0200"].get_total_count() == 60


def test_echo_only_run_prints_one_json_report() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest", "--echo-only", "--terminals", "6", "--processes", "2",
         "--duration", "1.5", "--warmup", "0.5", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["echo_tps"] > 0 and report["switch_tps"] is None
    assert report["errors"] == 0 and report["approved_share"] == 1.0
    assert report["processes"] == 2 and report["generator_cpu"]["echo_run_cores"] > 0
    assert report["echo"]["ready_terminals"] == 6
    assert report["p50_ms"] is not None and report["p999_ms"] >= report["p50_ms"]
    assert set(report["echo"]["by_type"]) >= {"withdrawal", "balance", "completion"}


def test_idle_connection_script_signs_on_and_reads_rss_of_the_target() -> None:
    # The echo server answers 0800 sign-ons with 00, which is all the script needs; the real
    # switch with 10,000 terminals is the measurement of docs/performance.md, not CI.
    echo = subprocess.Popen(
        [sys.executable, "-m", "loadtest.echo_server", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert echo.stdout is not None
        address = echo.stdout.readline().split()[1]
        result = subprocess.run(
            [sys.executable, "-m", "loadtest.idle_connections", "--switch", address,
             "--switch-pid", str(echo.pid), "--connections", "50", "--hold", "0.2",
             "--settle", "0", "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        echo.terminate()
        echo.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["signed_on"] == 50 and report["open_at_measurement"] == 50
    assert not report["failures"]
    assert report["switch_rss_mb"] > 1 and report["within_target"] is True
