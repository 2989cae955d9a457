"""Codec speed: the table-driven codec against pyiso8583 on a 0200 and a 0210 (pytest-benchmark).

Run: python -m pytest tests/protocol/test_codec_benchmark.py --benchmark-enable
With benchmarks disabled (the default, as in CI) each function runs once as a
plain test, which still checks that both codecs give the same result. The same
comparison as one JSON object, measured in one run: ``python -m loadtest.codec_bench --json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import iso8583
import pytest

from loadtest.codec_bench import SAMPLE_0200, sample_0210_fields
from switch.protocol import fastcodec
from switch.protocol.dialect import SPEC


def sample_0210() -> bytes:
    encoded, _ = iso8583.encode({"t": "0210", **sample_0210_fields()}, SPEC)
    return bytes(encoded)


MESSAGES: dict[str, Callable[[], bytes]] = {"0200": lambda: SAMPLE_0200, "0210": sample_0210}


def pyiso_fields(raw: bytes) -> dict[str, str]:
    decoded, _ = iso8583.decode(raw, SPEC)
    return {key: value for key, value in decoded.items() if key not in ("t", "p", "1", "h")}


@pytest.mark.parametrize("codec", ["fast", "pyiso8583"])
@pytest.mark.parametrize("mti", ["0200", "0210"])
def test_decode_speed(benchmark: Any, codec: str, mti: str) -> None:
    raw = MESSAGES[mti]()
    if codec == "fast":
        message = benchmark(fastcodec.decode, raw)
        fields = dict(message.fields)
    else:
        fields = benchmark(pyiso_fields, raw)
    assert fields == pyiso_fields(raw) and fields["11"] == "000003"


@pytest.mark.parametrize("codec", ["fast", "pyiso8583"])
@pytest.mark.parametrize("mti", ["0200", "0210"])
def test_encode_speed(benchmark: Any, codec: str, mti: str) -> None:
    raw = MESSAGES[mti]()
    fields = pyiso_fields(raw)
    if codec == "fast":
        encoded = benchmark(fastcodec.encode, mti, fields)
    else:
        encoded = benchmark(lambda: bytes(iso8583.encode({"t": mti, **fields}, SPEC)[0]))
    assert encoded == raw
