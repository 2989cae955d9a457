"""The MAC of spec 8: verify requests, MAC responses.

The terminal keys themselves (``KeyBook``, ``TerminalKeys``) live with the other caches in
``caches.py``: re-read under every sign-on, dropped by ``NOTIFY`` between sign-ons; the last
TAK read for each terminal is also remembered apart so a ``91`` can still be MAC'd while
PostgreSQL is down. They are imported here too, where the engine has always found them.
"""

from __future__ import annotations

from collections.abc import Mapping

from switch.authorization.caches import KeyBook, TerminalKeys
from switch.authorization.outcomes import UNMACED_CODES, Decline, Outcome
from switch.hsm import Hsm
from switch.hsm.errors import MacVerificationFailed
from switch.protocol.errors import MessageFormatError
from switch.protocol.message import encode_message, encode_message_async_mac, mac_input_of, mac_of


async def verify_request_mac(
    hsm: Hsm, tak: str | None, raw: bytes, fields: Mapping[str, str]
) -> None:
    """``63`` unless the request carries a MAC that verifies under the terminal's TAK."""
    if tak is None or ("64" not in fields and "128" not in fields):
        raise Decline(Outcome.MAC_FAILED, "no TAK or no MAC field")
    try:
        await hsm.verify_mac(tak, mac_input_of(raw), mac_of(raw))
    except (MacVerificationFailed, MessageFormatError) as exc:
        raise Decline(Outcome.MAC_FAILED, "MAC does not verify") from exc


async def encode_response(hsm: Hsm, tak: str | None, mti: str, fields: Mapping[str, str]) -> bytes:
    """Encode a response, MAC'd with the TAK that verified the request (spec 7, 8).

    ``30`` and ``58`` carry no MAC; nor does any answer when the TAK is unknown.
    """
    if tak is None or fields.get("39") in UNMACED_CODES:
        return encode_message(mti, fields)

    async def mac(data: bytes) -> str:
        return await hsm.generate_mac(tak, data)

    return await encode_message_async_mac(mti, fields, mac=mac)


__all__ = ["KeyBook", "TerminalKeys", "encode_response", "verify_request_mac"]
