"""CPU per 0200 on the switch's Python side, without sockets or PostgreSQL.

``python -m loadtest.hotpath_bench --json`` builds one terminal, one card and a real 0200
(format-0 PIN block, retail MAC) the way the load generator does, then times, per request,
each step the switch runs before and after its database batch: decode, parse, MAC verify,
PAN hash, the batch item (PIN verify included), and the 0210 (fields, encode, MAC). The
batch itself is replaced by a canned decision, so the figure is the Python cost alone: what
the end-to-end load test cannot separate from the machine's noise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from typing import Any

import trio

from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.batch_items import Decision
from switch.authorization.caches import CardView
from switch.authorization.context import AuthContext
from switch.authorization.financial import FinancialFlow
from switch.authorization.limits import effective_limits
from switch.authorization.request import fingerprint, parse_request
from switch.authorization.security import TerminalKeys, verify_request_mac
from switch.config import AuthorizationConfig
from switch.hsm import SoftwareHsm
from switch.protocol.message import decode_message, encode_message

PAN = "6228480000000000017"
TPK = "0123456789ABCDEFFEDCBA9876543210"
TAK = "89ABCDEF0123456776543210FEDCBA98"


def _request_bytes(tpk: bytes, tak: bytes) -> bytes:
    from loadtest.terminal_crypto import TerminalCrypto, pan_field_format0, pin_field_format0

    crypto = TerminalCrypto(tpk, tak)
    pin_block = crypto.pin_block(pin_field_format0("1234") ^ pan_field_format0(PAN)).decode()
    fields = {
        "3": "010000", "4": "000000010000", "7": "1129120000", "11": "000123",
        "12": "120000", "13": "1129", "22": "021", "32": "4321", "35": f"{PAN}=3012101",
        "37": "000000000123", "41": "ATM00001", "42": "ACQ000000000001",
        "43": "Load test ATM".ljust(40), "48": "LG002en", "49": "156", "52": pin_block,
    }  # fmt: skip
    return encode_message("0200", fields, mac=lambda data: crypto.mac(data).decode())


async def _setup() -> dict[str, Any]:
    hsm = SoftwareHsm(os.urandom(32), test_mode=True)
    tpk = await hsm.import_clear_key_test_mode(TPK, usage="P0")
    tak = await hsm.import_clear_key_test_mode(TAK, usage="M3")
    pvk = await hsm.generate_key("V1", algorithm="T")
    verification = await hsm.pin_verification_data_test_mode(pvk=pvk, pan=PAN, pin="1234")
    config = AuthorizationConfig()
    card = CardView(1, 1, "active", "3012", "ACC1", "622848*********0017", verification,
                    effective_limits(config, {}), {})
    keys = TerminalKeys("ATM00001", "tdes", "", tpk, tak)
    ctx = AuthContext(config=config, db=None, hsm=hsm, ledger=None)  # type: ignore[arg-type]
    flow = FinancialFlow(ctx, None, None)  # type: ignore[arg-type]
    raw = _request_bytes(bytes.fromhex(TPK), bytes.fromhex(TAK))
    return {"hsm": hsm, "card": card, "keys": keys, "ctx": ctx, "flow": flow, "raw": raw}


async def _time(n: int, step: Callable[[], Any]) -> float:
    started = time.process_time()
    for _ in range(n):
        await step()
    return (time.process_time() - started) / n * 1e6


async def _measure(n: int) -> dict[str, float]:
    s = await _setup()
    hsm, raw, keys, card, flow = s["hsm"], s["raw"], s["keys"], s["card"], s["flow"]
    message = decode_message(raw)
    request = parse_request(message.mti, message.fields)
    received = dt.datetime.now(dt.UTC)
    pan_hash = await hsm.pan_lookup_hash(PAN)
    content = fingerprint(request, pan_hash)
    decision = Decision("new", "00", 12345, received, 1, 99, 1_000_000, 900_000, "156", None)

    async def decode() -> None:
        decode_message(raw)

    async def parse() -> None:
        parse_request(message.mti, message.fields)

    async def mac() -> None:
        await verify_request_mac(hsm, keys.tak, raw, message.fields)

    async def pan() -> None:
        await hsm.pan_lookup_hash(PAN)
        fingerprint(request, pan_hash)

    async def prepare() -> None:
        await flow._prepare(request, card, keys, received, content, "0011223344556677")

    async def answer() -> None:
        fields = financial_fields(message, "00", decided_at=received, record_id=12345,
                                  balances=(1_000_000, 900_000, "156"), language="en")
        await encode_answer(hsm, keys.tak, message, fields)

    async def whole() -> None:
        m = decode_message(raw)
        r = parse_request(m.mti, m.fields)
        await verify_request_mac(hsm, keys.tak, raw, m.fields)
        h = await hsm.pan_lookup_hash(r.pan)
        await flow._prepare(r, card, keys, received, fingerprint(r, h), "0011223344556677")
        await flow._answer(m, r, keys, decision, received)

    steps = {"decode": decode, "parse": parse, "mac_verify": mac, "pan_hash_fingerprint": pan,
             "prepare_with_pin": prepare, "answer_with_mac": answer, "whole": whole}
    return {f"{name}_us": round(await _time(n, step), 2) for name, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = trio.run(_measure, args.iterations)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
