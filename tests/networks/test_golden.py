"""Golden outbound messages of the iso_host plug-in, written by hand from the host spec
(sections 2, 5.2-5.4) and compared byte for byte; the MAC'd variant's MAC comes from an
independent implementation (psec's ISO 9797-1 algorithm 3)."""

from __future__ import annotations

import datetime as dt

import psec.mac
import pytest

from switch.networks import iso_messages
from switch.networks.base import (
    AdviceKind,
    NetworkAdvice,
    NetworkAuthorization,
    NetworkProtocolError,
)
from switch.protocol.message import Message, decode_message, encode_message

AUTH = NetworkAuthorization(
    transaction_id=41,
    transmitted_at=dt.datetime(2025, 3, 14, 9, 26, 53, tzinfo=dt.UTC),
    pan="4999990000000017",
    expiry="3012",
    processing_code="010000",
    amount_minor=50_000,
    currency="156",
    terminal_id="ATM001",
    acquirer_id="00000123456",
    rrn="000000000041",
    terminal_stan="000007",
    pin_block="0123456789ABCDEF",
)

# Fields 2 3 4 7 11 14 32 37 41 49 52. Bitmap nibbles, bits 1-4: 0111 (2,3,4) = 7;
# 5-8: 0010 (7) = 2; 9-12: 0010 (11) = 2; 13-16: 0100 (14) = 4; 17-28: 000; 29-32: 0001 (32);
# 33-36: 0; 37-40: 1000 (37) = 8; 41-44: 1000 (41) = 8; 45-48: 0; 49-52: 1001 (49, 52) = 9;
# 53-64: 000.
GOLDEN_0200 = (
    b"0200"
    b"7224000108809000"
    b"16" b"4999990000000017"  # 2, LLVAR
    b"010000"  # 3
    b"000000050000"  # 4
    b"0314092653"  # 7, MMDDhhmmss UTC
    b"000042"  # 11 = transaction id 41 % 999999 + 1
    b"3012"  # 14
    b"04" b"4321"  # 32, LLVAR: the acquirer id configured for the network
    b"000000000041"  # 37
    b"ATM001  "  # 41, ans8
    b"156"  # 49
    b"0123456789ABCDEF"  # 52, already under the ZPK
)

ZAK = bytes.fromhex("1111111111111111FEDCBA9876543210")


def test_golden_outbound_0200() -> None:
    fields = iso_messages.authorization_request(AUTH, acquirer_id="4321")
    assert encode_message("0200", fields) == GOLDEN_0200


def test_golden_outbound_0200_with_mac() -> None:
    """Bit 64 set (last nibble 0001); MAC = ISO 9797-1 alg. 3, padding 1, per psec."""
    fields = iso_messages.authorization_request(AUTH, acquirer_id="4321")
    mac_input = GOLDEN_0200[:4] + b"7224000108809001" + GOLDEN_0200[20:]
    expected_mac = psec.mac.generate_retail_mac(ZAK[:8], ZAK[8:], mac_input, 1).hex().upper()
    from switch.hsm.primitives.mac import retail_mac

    encoded = encode_message("0200", fields, mac=lambda data: retail_mac(ZAK, data).hex())
    assert encoded == mac_input + expected_mac.encode()


def test_golden_partial_reversal_and_its_repeat() -> None:
    """0420 of spec 5.4 naming the 0200 above; the repeat differs only in the MTI."""
    advice = NetworkAdvice(
        advice_id=9, kind=AdviceKind.REVERSAL, attempt=0,
        created_at=dt.datetime(2025, 3, 14, 9, 27, 5, tzinfo=dt.UTC),
        original=AUTH, amount_minor=50_000, actual_amount_minor=20_000, reason_code="32",
    )
    mti, fields = iso_messages.advice_message(advice, acquirer_id="4321")
    # Fields 2 3 4 7 11 14 32 37 39 41 49 | 90 95: secondary bitmap (bit 1).
    # Primary: 1-4: 1111 = F (1, 2, 3, 4); 5-8: 0010 = 2; 9-12: 0010 = 2; 13-16: 0100 = 4;
    # 29-32: 0001; 37-40: 1010 (37, 39) = A; 41-44: 1000 = 8; 49-52: 1000 (49) = 8.
    # Secondary (65-128): 89-92: 0100 (90) = 4; 93-96: 0010 (95) = 2.
    expected = (
        b"0420"
        b"F22400010A808000"
        b"0000004200000000"
        b"16" b"4999990000000017"
        b"010000"
        b"000000050000"
        b"0314092705"
        b"000010"  # advice id 9 % 999999 + 1
        b"3012"
        b"04" b"4321"
        b"000000000041"
        b"32"
        b"ATM001  "
        b"156"
        b"0200" b"000042" b"0314092653" b"00000004321" b"00000000000"  # 90
        b"000000020000" b"000000000000" b"C00000000" b"C00000000"  # 95
    )
    assert mti == "0420"
    assert encode_message(mti, fields) == expected
    repeat_mti, repeat_fields = iso_messages.advice_message(
        NetworkAdvice(**{**_as_dict(advice), "attempt": 3}), acquirer_id="4321"
    )
    assert repeat_mti == "0421" and repeat_fields == fields


def _as_dict(advice: NetworkAdvice) -> dict:
    return {name: getattr(advice, name) for name in advice.__dataclass_fields__}


def test_answer_is_read_and_checked_against_the_request() -> None:
    fields = iso_messages.authorization_request(AUTH)
    echoed = {k: fields[k] for k in ("2", "3", "4", "7", "11", "32", "37", "41", "49")}
    balances = "1001156C000000100000" "1002156C000000090000"
    answer = iso_messages.authorization_answer(
        Message("0210", echoed | {"39": "00", "38": "XY0001", "54": balances}), fields
    )
    assert answer.approved and answer.authorization_id == "XY0001"
    assert answer.extra == {"54": balances}
    with pytest.raises(NetworkProtocolError):
        iso_messages.authorization_answer(
            Message("0210", echoed | {"11": "000099", "39": "00"}), fields
        )
    declined = iso_messages.authorization_answer(
        Message("0210", echoed | {"39": "51", "54": balances}), fields
    )
    assert not declined.approved and declined.extra == {}


def test_golden_decodes_with_the_dialect() -> None:
    """The hand-written golden is a valid message of the dialect (independent decoder)."""
    message = decode_message(GOLDEN_0200)
    assert message.fields["11"] == "000042" and message.fields["52"] == "0123456789ABCDEF"


def test_repr_masks_the_pan_and_hides_the_pin_block() -> None:
    text = repr(AUTH)
    assert AUTH.pan not in text and "0123456789ABCDEF" not in text and "499999" in text
