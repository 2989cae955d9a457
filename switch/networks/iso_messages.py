"""Wire messages of the reference ``iso_host`` network: this project's own dialect (the host
spec, sections 2-5) spoken switch-to-network. Pure functions from the plug-in interface's
dataclasses to field dicts, so they can be checked against golden messages written by hand.

Choices (docs/networks.md): the switch sends field 2 + 14, never track 2 (it does not keep it
beyond the terminal's request and the spec does not check CVV); field 11 is derived from the
switch's durable transaction / advice id, so a repeat or a reversal after a restart names the
same message; field 41 is the ATM's terminal id; field 32 is the acquirer id configured for the
network (the switch's institution), or the terminal's when none is configured.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Final

from switch.networks.base import (
    AdviceKind,
    NetworkAdvice,
    NetworkAnswer,
    NetworkAuthorization,
    NetworkProtocolError,
)
from switch.protocol.field48 import encode_tags
from switch.protocol.message import Message

STAN_MAX: Final = 999_999
acquirer_digits: Final = 11
# Fields of the terminal's request echoed to the network unchanged when present.
ACCEPTOR_FIELDS: Final = ("12", "13", "18", "22", "42", "43")
_FEES_ZERO: Final = "C00000000C00000000"
_BALANCES: Final = re.compile(r"^([0-9]{4}[0-9]{3}[CD][0-9]{12}){2}$")
_AUTH_ID: Final = re.compile(r"^[0-9A-Za-z ]{6}$")


def stan_for(durable_id: int) -> str:
    """Field 11 from a durable id: 1..999999, the same on every repeat."""
    return f"{durable_id % STAN_MAX + 1:06d}"


def transmission(at: dt.datetime) -> str:
    """Field 7, MMDDhhmmss in UTC."""
    return at.astimezone(dt.UTC).strftime("%m%d%H%M%S")


def _acquirer(request: NetworkAuthorization, acquirer_id: str | None) -> str:
    return acquirer_id or request.acquirer_id.lstrip("0") or "0"


def authorization_request(
    request: NetworkAuthorization, *, acquirer_id: str | None = None
) -> dict[str, str]:
    """The 0200 to the network (spec 5.2 request fields; MAC added by the link)."""
    fields: dict[str, str] = {
        "2": request.pan,
        "3": request.processing_code,
        "4": f"{request.amount_minor:012d}",
        "7": transmission(request.transmitted_at),
        "11": stan_for(request.transaction_id),
        "32": _acquirer(request, acquirer_id),
        "37": request.rrn,
        "41": request.terminal_id.ljust(8)[:8],
        "49": request.currency,
    }
    if request.expiry:
        fields["14"] = request.expiry
    for name in ACCEPTOR_FIELDS:
        if name in request.acceptor:
            fields[name] = request.acceptor[name]
    if request.pin_block is not None:
        if request.pin_block_format == 4:
            fields["48"] = encode_tags({"PB": request.pin_block})
        else:
            fields["52"] = request.pin_block
    if request.from_account:
        fields["102"] = request.from_account
    if request.to_account:
        fields["103"] = request.to_account
    return fields


def original_data(original: NetworkAuthorization, acquirer: str) -> str:
    """Field 90: 0200 + original STAN + original field 7 + acquirer id (11) + 11 zeros."""
    return (
        "0200"
        + stan_for(original.transaction_id)
        + transmission(original.transmitted_at)
        + acquirer.zfill(acquirer_digits)
        + "0" * 11
    )


def advice_message(
    advice: NetworkAdvice, *, acquirer_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """(MTI, fields) of an advice: 0220 completion / stand-in, 0420 reversal; repeats 0221/0421.

    Every repeat carries exactly the fields of the first, STAN included (spec 5.3).
    """
    original = advice.original
    acquirer = _acquirer(original, acquirer_id)
    fields: dict[str, str] = {
        "2": original.pan,
        "3": original.processing_code,
        "4": f"{advice.amount_minor:012d}",
        "7": transmission(advice.created_at),
        "11": stan_for(advice.advice_id),
        "32": acquirer,
        "37": original.rrn,
        "41": original.terminal_id.ljust(8)[:8],
        "49": original.currency,
        "90": original_data(original, acquirer),
    }
    if original.expiry:
        fields["14"] = original.expiry
    if advice.kind is AdviceKind.REVERSAL:
        fields["39"] = advice.reason_code or "68"
        if advice.actual_amount_minor is not None:
            fields["95"] = f"{advice.actual_amount_minor:012d}" + "0" * 12 + _FEES_ZERO
        base = "0420"
    else:
        if advice.authorization_id:
            fields["38"] = advice.authorization_id
        if advice.kind is AdviceKind.STAND_IN:
            fields["39"] = "00"  # approved by the acquirer in stand-in
        elif advice.kind is AdviceKind.STAND_IN_DECLINE:
            fields["39"] = advice.reason_code or "05"  # the acquirer's stand-in decline
        base = "0220"
    mti = base[:3] + ("1" if advice.attempt > 0 else "0")
    return mti, fields


def authorization_answer(response: Message, request_fields: Mapping[str, str]) -> NetworkAnswer:
    """Read a 0210: its 39, 38 and 54; the echoed key fields must match the request."""
    for name in ("4", "11", "41"):
        if response.fields.get(name) != request_fields.get(name):
            raise NetworkProtocolError(f"0210 field {name} does not match the 0200")
    code = response.fields.get("39", "")
    if len(code) != 2 or not code.isalnum():
        raise NetworkProtocolError("0210 without a valid field 39")
    extra: dict[str, str] = {}
    balances = response.fields.get("54")
    if code == "00" and balances is not None and _BALANCES.match(balances):
        extra["54"] = balances
    auth_id = response.fields.get("38")
    if auth_id is not None and not _AUTH_ID.match(auth_id):
        auth_id = None
    return NetworkAnswer(code, authorization_id=auth_id, extra=extra)
