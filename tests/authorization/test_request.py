"""Validation of financial requests (step 1): typed request or ``30``."""

from __future__ import annotations

import pytest

from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.request import fingerprint, parse_request

BASE = {
    "3": "010000", "4": "000000010000", "7": "1121101500", "11": "000123", "12": "181500",
    "13": "1121", "22": "021", "32": "123456", "35": "6228480000000000017=28121010000",
    "37": "633112000123", "41": "ATM00001", "42": "ATMSWITCH000001", "43": "X" * 40,
    "49": "156", "52": "0123456789ABCDEF", "64": "0" * 16,
}


def test_withdrawal_parsed() -> None:
    request = parse_request("0200", BASE)
    assert request.key.message_class == "0200"
    assert request.key.terminal_id == "ATM00001"
    assert request.key.acquirer_id == "00000123456"
    assert request.pan == "6228480000000000017"
    assert request.presented_expiry == "2812"
    assert request.amount_minor == 10_000


@pytest.mark.parametrize(
    "change",
    [{"3": None}, {"4": None}, {"11": None}, {"7": None}, {"32": None}, {"35": None},
     {"52": None}, {"2": "6228480000000000025"}, {"35": "garbage"}, {"48": "LG0"}],
)
def test_format_errors(change: dict[str, str | None]) -> None:
    fields = dict(BASE)
    for key, value in change.items():
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value
    with pytest.raises(Decline) as caught:
        parse_request("0200", fields)
    assert caught.value.outcome is Outcome.FORMAT_ERROR


def test_payee_inquiry_needs_no_pin_but_103() -> None:
    fields = dict(BASE, **{"3": "390000", "4": "0" * 12})
    fields.pop("52")
    with pytest.raises(Decline):
        parse_request("0200", fields)
    assert parse_request("0200", dict(fields, **{"103": "ACC2"})).to_account == "ACC2"


def test_reversal_with_field90_and_95() -> None:
    fields = dict(BASE)
    fields.pop("35")
    fields.pop("52")
    fields.update({"2": "6228480000000000017", "39": "32",
                   "90": "0200" + "000122" + "1121101400" + "00000123456" + "0" * 11,
                   "95": "000000005000" + "0" * 12 + "C00000000C00000000"})
    request = parse_request("0421", fields)
    assert request.key.message_class == "0420"
    assert request.original is not None
    assert (request.original.stan, request.original.acquirer_id) == ("000122", "00000123456")
    assert request.actual_amount_minor == 5000
    assert request.reversal_reason == "32"


def test_fingerprint_covers_spec_fields_only() -> None:
    first = parse_request("0200", BASE)
    same = parse_request("0200", dict(BASE, **{"12": "000000", "37": "999999999999"}))
    other = parse_request("0200", dict(BASE, **{"4": "000000020000"}))
    assert fingerprint(first, "h") == fingerprint(same, "h")
    assert fingerprint(first, "h") != fingerprint(other, "h")
    assert "6228" not in fingerprint(first, "h")
