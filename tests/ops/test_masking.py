"""The one masking function: golden output for a message full of secrets; fails closed."""

from __future__ import annotations

import json
import logging

from ops.logs import JsonFormatter
from ops.masking import WIPED, mask_fields, mask_pan

SECRETS = {
    "2": "6225880123456789",
    "3": "011000",
    "11": "000001",
    "14": "2812",
    "35": "6225880123456789=2812101123456",
    "41": "ATM00001",
    "48": "LG002zhNP016ABCDEF0123456789PB032" + "F" * 32 + "KP005xxxxxKM005yyyyyPN005王**",
    "52": "0123456789ABCDEF",
    "55": "9F2608AABBCCDDEEFF0011",
    "64": "89ABCDEF01234567",
    "102": "6222000011112222",
    "128": "1122334455667788",
    "999": "not in the dialect",
}


def test_golden_masking() -> None:
    assert mask_fields(SECRETS) == {
        "2": "622588******6789",
        "3": "011000",
        "11": "000001",
        "14": WIPED,
        "35": "622588******6789",
        "41": "ATM00001",
        "48": f"LG=zh;NP={WIPED};PB={WIPED};KP={WIPED};KM={WIPED};PN=王**",
        "52": WIPED,
        "55": WIPED,
        "64": WIPED,
        "102": "6222000011112222",
        "128": WIPED,
        "999": WIPED,
    }


def test_fails_closed_on_unparseable_values() -> None:
    assert mask_pan("12345") == WIPED
    assert mask_pan("62258801234567890123") == WIPED
    assert mask_pan("6225 8801 2345 6789") == WIPED
    assert mask_fields({"35": "no separator here"}) == {"35": WIPED}
    assert mask_fields({"48": "NP01"}) == {"48": WIPED}  # malformed field 48: wiped whole


def test_json_log_lines_mask_fields_and_drop_unknown_extras() -> None:
    record = logging.LogRecord("atm.test", logging.INFO, __file__, 1, "answered", None, None)
    record.__dict__.update({"fields": SECRETS, "terminal_id": "ATM00001", "pin": "1234"})
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "answered" and entry["terminal_id"] == "ATM00001"
    assert entry["fields"]["52"] == WIPED
    assert "pin" not in entry
    for secret in ("0123456789ABCDEF", "6225880123456789", "=2812", "ABCDEF0123456789", "xxxxx"):
        assert secret not in line
