"""A chip 0200 as an independent card and terminal would build it from section 11 alone.

The card side is pyemv (option A, common session key, MAC alg 3 padding 2), an independent
implementation and a test dependency only; nothing here imports the switch's EMV code
except the TLV encoder (itself tested against hand-written bytes).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from pyemv import ac as pyemv_ac
from pyemv import kd as pyemv_kd

from switch.emv.tlv import encode_tlv_hex

IMK = "0123456789ABCDEFFEDCBA9876543210"
PAN = "6225880123456789"
PSN = "01"
TRACK2 = f"{PAN}=2812101000000"
ORDER = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10")


def session_key(atc: int, imk: str = IMK, pan: str = PAN, psn: str = PSN) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyemv uses cryptography's deprecated TDES path
        mk = pyemv_kd.derive_icc_mk_a(bytes.fromhex(imk), pan, psn)
        return pyemv_kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))


def card_tags(
    *,
    atc: int = 7,
    amount: str = "000000010000",
    transaction_type: str = "01",
    currency: str = "0156",
    cid: str = "80",
    imk: str = IMK,
    psn: str = PSN,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """Section 11's tags with a genuine ARQC over them (after ``overrides``)."""
    tags = {
        "9F02": amount,
        "9F03": "000000000000",
        "9F1A": "0156",
        "95": "0000008000",
        "5F2A": currency,
        "9A": "261129",
        "9C": transaction_type,
        "9F37": "1A2B3C4D",
        "82": "3900",
        "9F36": f"{atc:04X}",
        "9F10": "06010A03A00000",
        "9F27": cid,
        **(overrides or {}),
    }
    values = {t: bytes.fromhex(v) for t, v in tags.items()}
    data = b"".join(values[t] for t in ORDER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values["9F26"] = pyemv_ac.generate_ac(
            session_key(atc, imk, PAN, psn), data, pyemv_ac.PaddingType.EMV
        )
    return values


def chip_0200(tags: Mapping[str, bytes] | None = None, **changes: str | None) -> dict[str, str]:
    """The fields of a chip withdrawal 0200 (1,000.00 CNY); ``None`` in changes drops a field."""
    fields: dict[str, str | None] = {
        "3": "011000",
        "4": "000000010000",
        "22": "051",
        "23": "0" + PSN,
        "35": TRACK2,
        "49": "156",
        "55": encode_tlv_hex(card_tags() if tags is None else tags),
        **changes,
    }
    return {k: v for k, v in fields.items() if v is not None}
