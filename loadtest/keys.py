"""Working keys of a load-test terminal: from a key exchange, or made up locally.

Against the switch, each terminal signs on and sends 0800/161; the 0810 carries
the TPK and TAK as TR-31 key blocks under the terminal's TMK (spec 5.1, 7),
unwrapped here with the HSM's pure primitives (the terminal side holds its own
clear keys). The echo baseline does no key exchange, so there each terminal
derives its keys from the population seed.
"""

from __future__ import annotations

import hashlib

from loadtest.wire import WireFormatError, decode_tags


class KeyExchangeError(Exception):
    """The 0810 did not carry usable KP/KM key blocks."""


def unwrap_working_keys(tmk: bytes, field_48: bytes) -> tuple[bytes, bytes]:
    """(TPK, TAK) from an 0810's 48/KP and 48/KM, unwrapped under the TMK."""
    from switch.hsm.primitives import tr31_unwrap  # the terminal side of the HSM primitives

    try:
        tags = decode_tags(field_48)
    except WireFormatError as exc:
        raise KeyExchangeError(f"0810 field 48 is malformed: {exc}") from exc
    if "KP" not in tags or "KM" not in tags:
        raise KeyExchangeError("0810 carries no KP/KM key blocks")
    try:
        _, tpk = tr31_unwrap(tmk, tags["KP"])
        _, tak = tr31_unwrap(tmk, tags["KM"])
    except Exception as exc:  # the primitives raise their own typed errors
        raise KeyExchangeError(f"cannot unwrap the key blocks: {type(exc).__name__}") from exc
    return bytes(tpk), bytes(tak)


def local_working_keys(seed: str, index: int) -> tuple[bytes, bytes]:
    """(TPK, TAK) for the echo baseline, where no key exchange happens."""
    tpk = hashlib.sha256(f"{seed}:tpk:{index}".encode()).digest()[:16]
    tak = hashlib.sha256(f"{seed}:tak:{index}".encode()).digest()[:16]
    return tpk, tak
