"""Malformed messages give MessageFormatError with what could be salvaged (for a 30)."""

from __future__ import annotations

import pytest

from switch.protocol import (
    MessageBuildError,
    MessageFormatError,
    decode_message,
    encode_format_error_response,
    encode_message,
    response_fields,
    response_mti,
)

SIGN_ON_HEAD = b"0800822000000080000004000000000000000615103000000001ATM00001"


def format_error(raw: bytes) -> MessageFormatError:
    with pytest.raises(MessageFormatError) as info:
        decode_message(raw)
    return info.value


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"08",
        b"08A0" + b"0" * 16,
        b"0800",
        b"0800822000000080000",  # truncated bitmap
        b"08008220000000800000" + b"0400000000000000",  # fields missing entirely
    ],
)
def test_unreadable_stan_means_no_answer(raw: bytes) -> None:
    error = format_error(raw)
    assert error.stan is None
    assert encode_format_error_response(error) is None


def test_bad_last_field_still_answers_30_without_mac() -> None:
    error = format_error(SIGN_ON_HEAD + b"0X1")
    assert (error.mti, error.stan, error.field) == ("0800", "000001", "70")
    # Golden 0810/30: 7 | 11 | 39 | 41, no 70 (it was invalid), no MAC (spec 8).
    assert encode_format_error_response(error) == (
        b"08100220000002800000061510300000000130ATM00001"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"0800822000000080000004000000000000000615103000000001ATM00001001X", "extra"),
        (b"0800822000000080000004000000000000000615103000000001ATM0000100", "short"),
        (b"0800822000000080000a04000000000000000615103000000001ATM00001001", "lower-case bitmap"),
        (b"0800822000000080000000000000000000000615103000000001ATM00001", "empty secondary"),
        (b"020040000000000000000A1234567890", "non-digit LLVAR prefix (field 2)"),
        (b"02000800000000000000ABCDEF", "digits field with letters (field 5 unknown)"),
        (b"0200200000000000000001100X", "n6 with a letter"),
        (b"020020000000000000010110000123456789abcdef", "lower-case MAC"),
        (b"0200A0000000000000010000004000000000011000" + b"0" * 42 + b"1" * 16, "MAC 64 with 90"),
        (b"020080000000000000008000000000000000", "field 65 (tertiary bitmap)"),
    ],
)
def test_malformed_variants(raw: bytes, reason: str) -> None:
    error = format_error(raw)
    assert error.mti == raw[:4].decode()


def test_stan_is_salvaged_past_a_bad_later_field() -> None:
    good = encode_message("0200", {"3": "011000", "11": "123456", "41": "ATM00001", "49": "156"})
    broken = good[:-3] + b"1X6"
    error = format_error(broken)
    assert error.stan == "123456"
    assert dict(error.fields) == {"3": "011000", "11": "123456", "41": "ATM00001"}
    answer = decode_message(encode_format_error_response(error) or b"")
    assert answer.mti == "0210" and answer.response_code == "30" and answer.mac is None


def test_malformed_response_from_terminal_is_never_answered() -> None:
    error = format_error(b"0810022000000280000006151030000000013")
    assert error.stan == "000001"
    assert encode_format_error_response(error) is None


def test_build_errors_are_local() -> None:
    with pytest.raises(MessageBuildError):
        encode_message("080", {})
    with pytest.raises(MessageBuildError):
        encode_message("0800", {"5": "1"})
    with pytest.raises(MessageBuildError):
        encode_message("0800", {"11": "12345"})  # fixed n6
    with pytest.raises(MessageBuildError):
        encode_message("0800", {"11": "12345X"})
    with pytest.raises(MessageBuildError):
        encode_message("0200", {"11": "123456", "64": "0" * 16}, mac=lambda _: "0" * 16)
    with pytest.raises(MessageBuildError):
        encode_message("0200", {"11": "123456"}, mac=lambda _: "short")
    with pytest.raises(MessageBuildError):
        response_mti("0210")


def test_response_mtis() -> None:
    assert [response_mti(m) for m in ("0200", "0201", "0221", "0421", "0800")] == [
        "0210",
        "0210",
        "0230",
        "0430",
        "0810",
    ]


def test_response_fields_echo_what_the_spec_names() -> None:
    request = decode_message(
        encode_message(
            "0200",
            {
                "2": "6225880123456789",
                "3": "011000",
                "4": "000000010000",
                "7": "0615103000",
                "11": "000001",
                "12": "183000",
                "13": "0615",
                "22": "021",
                "32": "123456",
                "37": "061510000001",
                "41": "ATM00001",
                "42": "BANK00000000001",
                "43": "X" * 40,
                "49": "156",
                "52": "0" * 16,
                "103": "62220000",
            },
            mac=lambda _: "1" * 16,
        )
    )
    fields = response_fields(request, "51", {"15": "0615"})
    assert fields == {
        "2": "6225880123456789",
        "3": "011000",
        "4": "000000010000",
        "7": "0615103000",
        "11": "000001",
        "12": "183000",
        "13": "0615",
        "32": "123456",
        "37": "061510000001",
        "41": "ATM00001",
        "42": "BANK00000000001",
        "49": "156",
        "103": "62220000",
        "39": "51",
        "15": "0615",
    }  # not 22, 35, 43, 52, nor the request's MAC
