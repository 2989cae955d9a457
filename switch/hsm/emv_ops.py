"""EMV cryptogram operations of ``SoftwareHsm`` (ATM_HOST_SPEC section 11), on LMK handles.

The issuer master key (usage ``E0``, mode ``X``: derive only) is unwrapped here, the card's
MK-AC and the transaction's SK-AC are derived and used here, and none of them leaves:
callers get ``None`` (verified), ``CryptogramFailed``, or an ARPC, which is public data.

An ARPC is produced only for an ARQC that verifies (``arpc_for_verified_arqc``), as a
payment HSM's "verify ARQC and generate ARPC" command does: the HSM must not be an oracle
that signs any 8 bytes a caller hands it as an issuer's approval.
"""

from __future__ import annotations

import hmac

from switch.hsm.errors import CryptogramFailed, HsmError, KeyUsageError
from switch.hsm.key_usage import MODES_DERIVE, require
from switch.hsm.keystore import KeyStore
from switch.hsm.primitives.emv import (
    application_cryptogram,
    arpc_method1,
    cryptogram_bytes,
    emv_key_bytes,
    session_key_for_atc,
)
from switch.hsm.primitives.errors import PrimitiveError

_usage_imk_ac = frozenset({"E0"})
arc_chars = 2


def _session_key(store: KeyStore, imk_ac: str, pan: str, psn: str, atc: int) -> bytes:
    imk = store.unwrap(imk_ac)
    require(imk.header, _usage_imk_ac, MODES_DERIVE, "EMV cryptogram")
    if imk.header.algorithm != "T" or len(imk.key) != emv_key_bytes:
        raise KeyUsageError("an IMK-AC is a double-length TDES key")
    try:
        return session_key_for_atc(imk.key, pan, psn, atc)
    except PrimitiveError:
        raise CryptogramFailed("cryptogram verification failed") from None


def verify_arqc(
    store: KeyStore, imk_ac: str, pan: str, psn: str, atc: int, data: bytes, arqc: bytes
) -> bytes:
    """The session key when ``arqc`` is the card's cryptogram over ``data``; else raise."""
    session_key = _session_key(store, imk_ac, pan, psn, atc)
    if not isinstance(arqc, bytes | bytearray) or len(arqc) != cryptogram_bytes:
        raise CryptogramFailed("cryptogram verification failed")
    expected = application_cryptogram(session_key, bytes(data))
    if not hmac.compare_digest(expected, bytes(arqc)):
        raise CryptogramFailed("cryptogram verification failed")
    return session_key


def arc_bytes(response_code: str) -> bytes:
    """ARC of section 11: the two ASCII characters of field 39 (``00`` -> 3030)."""
    if (
        not isinstance(response_code, str)
        or len(response_code) != arc_chars
        or not response_code.isascii()
        or not response_code.isalnum()
    ):
        raise HsmError("an ARC is the 2-character response code of the answer")
    return response_code.encode("ascii")


def arpc_for_verified_arqc(
    store: KeyStore,
    imk_ac: str,
    pan: str,
    psn: str,
    atc: int,
    data: bytes,
    arqc: bytes,
    response_code: str,
) -> bytes:
    """ARPC method 1 over ``response_code``'s ARC, only after the ARQC verifies again."""
    arc = arc_bytes(response_code)
    session_key = verify_arqc(store, imk_ac, pan, psn, atc, data, arqc)
    return arpc_method1(session_key, bytes(arqc), arc)
