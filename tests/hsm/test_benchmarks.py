"""Throughput of the hot-path HSM calls (pytest-benchmark; disabled by default).

Run: python -m pytest tests/hsm/test_benchmarks.py --benchmark-enable
Each round does ``batch`` operations through the public async API (driven
without an event loop: these coroutines never suspend), so ops/s = batch / mean.
With benchmarks disabled the functions still run once, as a smoke test.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from switch.hsm import SoftwareHsm
from switch.hsm.primitives import encrypt_pin_block, retail_mac, tr31_unwrap

batch = 1000
PAN = "6221234567890123"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
# A 0200 is ~250 bytes on the wire; the MAC covers all of it but the MAC field.
message = b"0200" + b"F23A44810AE0800000000000040000001" * 7


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (SoftwareHsm computes in place)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("HSM coroutine suspended; benchmark needs an event loop")


@pytest.fixture
def setup(hsm: SoftwareHsm) -> dict[str, Any]:
    tmk = run_sync(hsm.import_clear_key_test_mode(TMK.hex(), usage="K0"))
    issued = run_sync(hsm.issue_terminal_working_keys(tmk))
    tpk_clear = tr31_unwrap(TMK, issued.tpk_block)[1]
    tak_clear = tr31_unwrap(TMK, issued.tak_block)[1]
    pvk = run_sync(hsm.generate_key("V1"))
    card = run_sync(hsm.pin_verification_data_test_mode(pvk=pvk, pan=PAN, pin="1234"))
    return {
        "tpk": issued.tpk,
        "tak": issued.tak,
        "card": card,
        "block": encrypt_pin_block(tpk_clear, "1234", PAN).hex().upper(),
        "mac": retail_mac(tak_clear, message).hex().upper(),
    }


def test_pin_verify_ibm3624(benchmark: Any, hsm: SoftwareHsm, setup: dict[str, Any]) -> None:
    def verify_batch() -> None:
        for _ in range(batch):
            run_sync(
                hsm.verify_pin(
                    tpk=setup["tpk"], pin_block=setup["block"], pan=PAN, verification=setup["card"]
                )
            )

    benchmark.extra_info["operations_per_round"] = batch
    benchmark(verify_batch)


def test_mac_generate_and_verify(benchmark: Any, hsm: SoftwareHsm, setup: dict[str, Any]) -> None:
    def mac_batch() -> None:
        for _ in range(batch):
            run_sync(hsm.verify_mac(setup["tak"], message, setup["mac"]))
            run_sync(hsm.generate_mac(setup["tak"], message))

    benchmark.extra_info["operations_per_round"] = batch
    benchmark(mac_batch)


def test_request_crypto_pin_mac_verify_mac_generate(
    benchmark: Any, hsm: SoftwareHsm, setup: dict[str, Any]
) -> None:
    """What one 0200 costs the HSM: MAC verify + PIN verify + MAC generate for the 0210."""

    def request_batch() -> None:
        for _ in range(batch):
            run_sync(hsm.verify_mac(setup["tak"], message, setup["mac"]))
            run_sync(
                hsm.verify_pin(
                    tpk=setup["tpk"], pin_block=setup["block"], pan=PAN, verification=setup["card"]
                )
            )
            run_sync(hsm.generate_mac(setup["tak"], message))

    benchmark.extra_info["operations_per_round"] = batch
    benchmark(request_batch)
