"""Working keys of a load-test terminal: from a key exchange, or made up locally.

Against the switch, each terminal signs on and sends 0800/161; the 0810 carries
the TPK and TAK as TR-31 key blocks under the terminal's TMK (spec 5.1, 7),
unwrapped by the terminal-side helper (the terminal holds its own clear keys).
The echo baseline does no key exchange, so there each terminal
derives its keys from the population seed.
"""

from __future__ import annotations

import hashlib


class KeyExchangeError(Exception):
    """The 0810 did not carry usable KP/KM key blocks."""


def unwrap_working_keys(tmk: bytes, field_48: bytes) -> tuple[bytes, bytes]:
    """(TPK, TAK) from an approved 0810's 48/KP and 48/KM, unwrapped under the TMK.

    Uses the terminal-side helper of ``terminals.hostlink.keys``, which also checks
    the key blocks' usage, mode and version against spec 7 (setup only, not hot).
    """
    from terminals.hostlink.keys import TerminalKeySet

    try:
        keys = TerminalKeySet(tmk=tmk).after_key_exchange(
            {"39": "00", "48": field_48.decode("utf-8")}
        )
    except Exception as exc:  # KeyExchangeError, the primitives' KeyBlockError, bad UTF-8
        raise KeyExchangeError(f"cannot use the key exchange: {type(exc).__name__}: {exc}") from exc
    if keys.tpk is None or keys.tak is None:
        raise KeyExchangeError("key exchange gave no TPK or TAK")
    return keys.tpk, keys.tak


def local_working_keys(seed: str, index: int) -> tuple[bytes, bytes]:
    """(TPK, TAK) for the echo baseline, where no key exchange happens."""
    tpk = hashlib.sha256(f"{seed}:tpk:{index}".encode()).digest()[:16]
    tak = hashlib.sha256(f"{seed}:tak:{index}".encode()).digest()[:16]
    return tpk, tak
