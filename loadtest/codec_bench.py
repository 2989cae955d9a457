"""Microbenchmark of the message codec: the table-driven codec against pyiso8583.

    python -m loadtest.codec_bench [--json] [--number 20000] [--repeat 5]

Measures, in one process and one run (so machine load falls on all alike), the
CPU time per call of:

- decoding a withdrawal 0200 (~220 bytes: track 2, PIN block, MAC) with
  :func:`switch.protocol.fastcodec.decode` and with ``iso8583.decode(raw, SPEC)``;
- encoding its 0210 answer (echoed fields, 15, 38, 39, MAC field 64) with
  :func:`switch.protocol.fastcodec.encode` and with ``iso8583.encode(doc, SPEC)``;
- the same with :mod:`tests.protocol.reference_codec`, the codec the switch used
  before (pyiso8583 plus the dialect's character and MAC checks), i.e. "before";
- a retail MAC over the 0200 from fresh cipher contexts and from cached ones.

Times are the minimum over ``--repeat`` rounds of ``--number`` calls, in process
CPU time (``time.process_time``: time the process was descheduled on a busy
machine does not count). pyiso8583 alone checks lengths only, so the fast codec
does strictly more work than it.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any, Final

import iso8583

from switch.hsm.primitives.mac import retail_mac, retail_mac_uncached
from switch.protocol import fastcodec
from switch.protocol.dialect import SPEC
from tests.protocol import reference_codec

# A withdrawal as a terminal sends it (spec 3.1): fields 3 4 7 11 12 13 22 32 35 37
# 41 42 43 49 52 64, 217 bytes.
SAMPLE_0200: Final = (
    b"0200"
    b"3238040128E09001"
    b"011000"
    b"000000010000"
    b"0615103000"
    b"000003"
    b"183000"
    b"0615"
    b"021"
    b"06123456"
    b"30"
    b"6225880123456789=2812101000000"
    b"061510000003"
    b"ATM00001"
    b"BANK00000000001"
    b"HEAD OFFICE LOBBY ATM 1  SHANGHAI     CN"
    b"156"
    b"0123456789ABCDEF"
    b"89ABCDEF01234567"
)
# Its approval (spec 5.2): the echoed fields, 15, 38, 39, then the MAC in 64.
ECHOED_0210: Final = ("3", "4", "7", "11", "12", "13", "32", "37", "41", "42", "49")
SAMPLE_MAC: Final = "89ABCDEF01234567"
SAMPLE_TAK: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def sample_0210_fields() -> dict[str, str]:
    """The fields of the approval of :data:`SAMPLE_0200`, MAC field included."""
    request = fastcodec.decode(SAMPLE_0200).fields
    fields = {key: request[key] for key in ECHOED_0210}
    fields.update({"15": "0615", "38": "A12345", "39": "00", "64": SAMPLE_MAC})
    return fields


def cases() -> dict[str, Callable[[], object]]:
    """What is timed, by name; each returns its result so callers can check it."""
    fields = sample_0210_fields()
    unmacced = {key: value for key, value in fields.items() if key != "64"}
    return {
        "fast_decode": lambda: fastcodec.decode(SAMPLE_0200),
        "pyiso_decode": lambda: iso8583.decode(SAMPLE_0200, SPEC),
        "reference_decode": lambda: reference_codec.decode_message(SAMPLE_0200),
        "fast_encode": lambda: fastcodec.encode("0210", fields),
        "pyiso_encode": lambda: iso8583.encode({"t": "0210", **fields}, SPEC),
        "reference_encode": lambda: reference_codec.encode_message("0210", fields),
        "fast_encode_with_mac": lambda: fastcodec.encode_with_mac(
            "0210", unmacced, lambda _: SAMPLE_MAC
        ),
        "retail_mac_uncached": lambda: retail_mac_uncached(SAMPLE_TAK, SAMPLE_0200[:-16]),
        "retail_mac_cached": lambda: retail_mac(SAMPLE_TAK, SAMPLE_0200[:-16]),
    }


def measure(number: int, repeat: int) -> dict[str, Any]:
    """Microseconds per call of every case, then the ratios pyiso8583 (and before) / fast."""
    result: dict[str, Any] = {}
    for name, call in cases().items():
        calls = max(1, number // 10) if name.startswith(("pyiso", "reference")) else number
        best = min(timeit.repeat(call, number=calls, repeat=repeat, timer=time.process_time))
        result[f"{name}_us"] = round(best / calls * 1e6, 3)
    result["ratios"] = {
        "decode_pyiso_over_fast": round(result["pyiso_decode_us"] / result["fast_decode_us"], 1),
        "encode_pyiso_over_fast": round(result["pyiso_encode_us"] / result["fast_encode_us"], 1),
        "decode_reference_over_fast": round(
            result["reference_decode_us"] / result["fast_decode_us"], 1
        ),
        "encode_reference_over_fast": round(
            result["reference_encode_us"] / result["fast_encode_us"], 1
        ),
        "retail_mac_uncached_over_cached": round(
            result["retail_mac_uncached_us"] / result["retail_mac_cached_us"], 2
        ),
    }
    result.update({"number": number, "repeat": repeat, "sample_0200_bytes": len(SAMPLE_0200)})
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.codec_bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--number", type=int, default=20_000, help="calls per round (fast path)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best one counts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args.number, args.repeat)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
