"""The emulated card's cryptography against `pyemv` (an independent implementation, test only):
known answers from pyemv's documented examples, then random keys, PANs, PSNs, ATCs and data."""

from __future__ import annotations

import pyemv
from hypothesis import given
from hypothesis import strategies as st

from terminals.emulators import chip_crypto

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def without_parity(key: bytes) -> bytes:
    """DES ignores the low bit of each key byte; pyemv sets odd parity, the card does not."""
    return bytes(byte & 0xFE for byte in key)


def test_mk_ac_known_answer_from_pyemv_docs() -> None:
    # Source: pyemv 1.5.0, pyemv/kd.py module docstring (option A, PAN 99012345678901234, PSN 45).
    mk = chip_crypto.derive_mk_ac(IMK, "99012345678901234", "45")
    assert without_parity(mk) == without_parity(bytes.fromhex("67F8292358083E5EA7AB7FDA58D53B6B"))


def test_session_key_known_answer_from_pyemv_docs() -> None:
    # Source: pyemv 1.5.0, derive_common_sk docstring (MK 0123..3210, R = 001C000000000000).
    sk = chip_crypto.derive_sk_ac(IMK, 0x001C)
    assert without_parity(sk) == without_parity(bytes.fromhex("E9FB384AF807B940FEDCEA613461B0C4"))


def test_padding_method_2_adds_a_whole_block_when_aligned() -> None:
    assert chip_crypto.pad_method_2(bytes(8)) == bytes(8) + bytes.fromhex("8000000000000000")
    assert chip_crypto.pad_method_2(b"\x01\x02") == bytes.fromhex("0102800000000000")


pans = st.text("0123456789", min_size=12, max_size=19)
psns = st.text("0123456789", min_size=2, max_size=2)
keys = st.binary(min_size=16, max_size=16)


@given(keys, pans, psns, st.integers(0, 0xFFFF), st.binary(min_size=1, max_size=64),
       st.sampled_from([b"00", b"51", b"05"]))
def test_keys_cryptograms_and_arpc_match_pyemv(imk: bytes, pan: str, psn: str, atc: int,
                                               data: bytes, arc: bytes) -> None:
    mk = chip_crypto.derive_mk_ac(imk, pan, psn)
    assert without_parity(mk) == without_parity(pyemv.kd.derive_icc_mk_a(imk, pan, psn))
    sk = chip_crypto.derive_sk_ac(mk, atc)
    oracle_sk = pyemv.kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))
    assert without_parity(sk) == without_parity(oracle_sk)
    arqc = chip_crypto.application_cryptogram(sk, data)
    assert arqc == pyemv.ac.generate_ac(sk, data, pyemv.ac.PaddingType.EMV)
    arpc = chip_crypto.arpc_method_1(sk, arqc, arc)
    assert arpc == pyemv.ac.generate_arpc_1(sk, arqc, arc)
    assert chip_crypto.arpc_matches(sk, arqc, arc, arpc)
    assert not chip_crypto.arpc_matches(sk, arqc, arc, bytes([arpc[0] ^ 1]) + arpc[1:])
