"""What a code means, for reports read by people: response codes (field 39 of answers, spec 6)
and reversal reasons (field 39 of a 0420, spec 5.4). One table each, taken from the wire
enumerations in ``switch/protocol/codes.py`` so a new code cannot be missing here."""

from __future__ import annotations

import re
from collections.abc import Iterable

from switch.protocol.codes import ResponseCode, ReversalReason

# Where an enumeration name reads badly as words.
_WORDING = {
    "00": "approved",
    "14": "card not on file",
    "57": "not permitted to the cardholder",
    "58": "not permitted to the terminal",
    "unrecorded": "reason not recorded",
}


def _words(name: str) -> str:
    return re.sub(r"\bpin\b", "PIN", name.lower().replace("_", " "))


RESPONSE_MEANINGS = {code.value: _WORDING.get(code.value, _words(code.name))
                     for code in ResponseCode}
REVERSAL_MEANINGS = {reason.value: _words(reason.name) for reason in ReversalReason} | {
    "unrecorded": _WORDING["unrecorded"]}


def response_meaning(code: str) -> str:
    return RESPONSE_MEANINGS.get(code, "code not in the host spec")


def reversal_meaning(reason: str) -> str:
    return REVERSAL_MEANINGS.get(reason, "reason not in the host spec")


def legend(title: str, codes: Iterable[str], *, reversal: bool = False) -> str:
    """``title: 00 approved, 51 insufficient funds`` for the codes seen (sorted), or ''."""
    seen = sorted(set(codes))
    if not seen:
        return ""
    explain = reversal_meaning if reversal else response_meaning
    return f"{title}: " + ", ".join(f"{code} {explain(code)}" for code in seen)
