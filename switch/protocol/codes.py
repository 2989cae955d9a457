"""Enumerations of the wire codes: MTIs, processing codes, response and network codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Mti(StrEnum):
    """Message type identifiers used on the terminal link (spec 5)."""

    FINANCIAL_REQUEST = "0200"
    FINANCIAL_REQUEST_REPEAT = "0201"
    FINANCIAL_RESPONSE = "0210"
    COMPLETION_ADVICE = "0220"
    COMPLETION_ADVICE_REPEAT = "0221"
    COMPLETION_RESPONSE = "0230"
    REVERSAL_ADVICE = "0420"
    REVERSAL_ADVICE_REPEAT = "0421"
    REVERSAL_RESPONSE = "0430"
    NETWORK_REQUEST = "0800"
    NETWORK_RESPONSE = "0810"


class MessageClass(StrEnum):
    """The class of a request: its MTI with the repeat digit cleared (spec 5.5)."""

    FINANCIAL = "0200"
    COMPLETION = "0220"
    REVERSAL = "0420"
    NETWORK = "0800"


class TransactionType(StrEnum):
    """Positions 1-2 of field 3 (spec 4)."""

    WITHDRAWAL = "01"
    DEPOSIT = "21"
    BALANCE_INQUIRY = "31"
    MINI_STATEMENT = "38"
    PAYEE_NAME_INQUIRY = "39"
    TRANSFER = "40"
    PIN_CHANGE = "90"


class ResponseCode(StrEnum):
    """Field 39 in responses (spec 6)."""

    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    NOT_PERMITTED_TO_TERMINAL = "58"
    SUSPECTED_FRAUD = "59"  # section 11: chip cryptogram failed or replayed
    EXCEEDS_AMOUNT_LIMIT = "61"
    SECURITY_VIOLATION = "63"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    PAYEE_ACCOUNT_NOT_FOUND = "76"
    UNAVAILABLE = "91"
    UNABLE_TO_ROUTE = "92"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"


class ReversalReason(StrEnum):
    """Field 39 in a 0420: why the terminal reverses (spec 5.4)."""

    CUSTOMER_CANCELLED = "17"
    DEVICE_FAILURE = "22"
    PARTIAL_DISPENSE = "32"
    RESPONSE_TOO_LATE = "68"


class NetworkCode(StrEnum):
    """Field 70 of 0800/0810 (spec 5.1)."""

    SIGN_ON = "001"
    SIGN_OFF = "002"
    KEY_EXCHANGE = "161"
    ECHO = "301"


# Responses that never carry a MAC (spec 8).
RESPONSE_CODES_WITHOUT_MAC: Final = frozenset(
    {ResponseCode.FORMAT_ERROR, ResponseCode.NOT_PERMITTED_TO_TERMINAL}
)


def message_class(mti: str) -> MessageClass | None:
    """The class of a request MTI (``0221`` -> ``0220``), or None for anything else."""
    if len(mti) != 4 or mti[3] not in "01":
        return None
    try:
        return MessageClass(mti[:3] + "0")
    except ValueError:
        return None


def is_request_mti(mti: str) -> bool:
    """True for MTIs that expect an answer (third digit even: request or advice)."""
    return len(mti) == 4 and mti.isdigit() and mti.isascii() and int(mti[2]) % 2 == 0


def mti_is_repeat(mti: str) -> bool:
    """True for a repeat (``0201``, ``0221``, ``0421``): last digit 1 in ISO 8583:1987."""
    return len(mti) == 4 and mti[3] == "1"
