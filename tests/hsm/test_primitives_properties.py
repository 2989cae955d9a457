"""Property tests: our primitives agree with independent implementations on random inputs.

psec (PIN blocks 0/3/4, retail MAC, IBM 3624, PVV, CVV, TR-31), pydukpt (TDES
DUKPT) and cryptography's CMAC are test-only dependencies; every format also
round-trips through its own decoder.
"""

from __future__ import annotations

import psec
import pydukpt
import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.hsm.primitives import (
    Tr31Header,
    aes_cmac,
    cvv,
    dukpt_tdes,
    pin_blocks,
    retail_mac,
    tr31_unwrap,
    tr31_wrap,
    visa_pvv,
)
from switch.hsm.primitives.des import tdes_ecb_encrypt
from switch.hsm.primitives.pin_verification import ibm3624_natural_pin, ibm3624_offset

# psec still builds TripleDES from the deprecated location; that is its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

examples = settings(max_examples=60)
pins = st.text("0123456789", min_size=4, max_size=12)
pans = st.text("0123456789", min_size=13, max_size=19)
tdes_keys = st.binary(min_size=16, max_size=16)
aes_keys = st.sampled_from((16, 24, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@examples
@given(pin=pins, pan=pans)
def test_format0_matches_psec(pin: str, pan: str) -> None:
    ours = pin_blocks.pin_block_format0(pin, pan)
    assert ours == psec.pinblock.encode_pinblock_iso_0(pin, pan)
    assert psec.pinblock.decode_pinblock_iso_0(ours, pan) == pin
    assert pin_blocks.decode_pin_block_format0(ours, pan) == pin


@examples
@given(pin=pins, pan=pans)
def test_format3_decodes_in_psec_and_back(pin: str, pan: str) -> None:
    ours = pin_blocks.pin_block_format3(pin, pan)
    assert psec.pinblock.decode_pinblock_iso_3(ours, pan) == pin
    theirs = psec.pinblock.encode_pinblock_iso_3(pin, pan)
    assert pin_blocks.decode_pin_block_format3(theirs, pan) == pin


@examples
@given(pin=pins)
def test_format1_round_trip(pin: str) -> None:
    assert pin_blocks.decode_pin_block_format1(pin_blocks.pin_block_format1(pin)) == pin


@examples
@given(key=aes_keys, pin=pins, pan=pans)
def test_format4_matches_psec_both_ways(key: bytes, pin: str, pan: str) -> None:
    ours = pin_blocks.encipher_format4(key, pin, pan)
    assert psec.pinblock.decipher_pinblock_iso_4(key, ours, pan) == pin
    theirs = psec.pinblock.encipher_pinblock_iso_4(key, pin, pan)
    assert pin_blocks.decipher_format4(key, theirs, pan) == pin


@examples
@given(key=tdes_keys, pin=pins, pan=pans, other=pans)
def test_format0_bound_to_pan(key: bytes, pin: str, pan: str, other: str) -> None:
    """With another PAN, a block never yields the same PIN (it fails or yields another)."""
    block = pin_blocks.encrypt_pin_block(key, pin, pan, 0)
    if pan[-13:-1] == other[-13:-1]:
        assert pin_blocks.decrypt_pin_block(key, block, other, 0) == pin
        return
    try:
        assert pin_blocks.decrypt_pin_block(key, block, other, 0) != pin
    except pin_blocks.PinFormatError:
        pass


@examples
@given(key=tdes_keys, data=st.binary(max_size=300))
def test_retail_mac_matches_psec(key: bytes, data: bytes) -> None:
    expected = psec.mac.generate_retail_mac(key[:8], key[8:], data, 1)
    if not data:  # psec pads nothing to nothing; ISO 9797-1 method 1 pads it to one block
        expected = psec.mac.generate_retail_mac(key[:8], key[8:], bytes(8), 1)
    assert retail_mac(key, data) == expected


@examples
@given(key=aes_keys, data=st.binary(max_size=300))
def test_aes_cmac_matches_cryptography(key: bytes, data: bytes) -> None:
    reference = cmac.CMAC(algorithms.AES(key))
    reference.update(data)
    assert aes_cmac(key, data) == reference.finalize()


@examples
@given(pvk=tdes_keys, pin=pins, pan=pans)
def test_ibm3624_matches_psec(pvk: bytes, pin: str, pan: str) -> None:
    validation = pan[-13:-1].ljust(16, "F")
    table = "0123456789012345"
    ours = ibm3624_offset(pvk, pin, validation, table)
    theirs = psec.pin.generate_ibm3624_offset(pvk, table, pin, pan[-13:-1], 0, 12, "F")
    assert ours == theirs
    assert len(ibm3624_natural_pin(pvk, validation, len(pin), table)) == len(pin)


@examples
@given(
    pvk=tdes_keys,
    pin=st.text("0123456789", min_size=4, max_size=4),
    pan=pans,
    pvki=st.sampled_from("0123456789"),
)
def test_visa_pvv_matches_psec(pvk: bytes, pin: str, pan: str, pvki: str) -> None:
    assert visa_pvv(pvk, pan, pin, pvki) == psec.pin.generate_visa_pvv(pvk, pvki, pin, pan)


@examples
@given(
    cvk=tdes_keys,
    pan=st.text("0123456789", min_size=12, max_size=19),
    expiry=st.text("0123456789", min_size=4, max_size=4),
    service=st.text("0123456789", min_size=3, max_size=3),
)
def test_cvv_matches_psec(cvk: bytes, pan: str, expiry: str, service: str) -> None:
    assert cvv(cvk, pan, expiry, service) == psec.cvv.generate_cvv(cvk, pan, expiry, service)


headers = st.builds(
    Tr31Header,
    version=st.just("B"),
    key_usage=st.sampled_from(["P0", "M3", "K0", "B0", "V1", "C0"]),
    algorithm=st.just("T"),
    mode_of_use=st.sampled_from("BCEDGVX"),
    key_version=st.sampled_from(["00", "12", "c1"]),
    exportability=st.sampled_from("ENS"),
    optional_blocks=st.lists(
        st.tuples(st.sampled_from(["KS", "TS", "DA"]), st.text("0123456789ABCDEF", max_size=20)),
        max_size=2,
        unique_by=lambda b: b[0],
    ).map(tuple),
)


@examples
@given(
    kbpk=st.sampled_from((16, 24)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    header=headers,
    key=st.sampled_from((8, 16, 24)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_tr31_version_b_matches_psec(kbpk: bytes, header: Tr31Header, key: bytes) -> None:
    ours = tr31_wrap(kbpk, header, key)
    assert psec.tr31.unwrap(kbpk, ours)[1] == key
    theirs = psec.tr31.wrap(
        kbpk, ours[:5].replace(ours[1:5], "0000") + ours[5 : _header_len(ours)], key
    )
    parsed, unwrapped = tr31_unwrap(kbpk, theirs)
    assert unwrapped == key and parsed.key_usage == header.key_usage


@examples
@given(
    kbpk=aes_keys,
    header=headers.map(
        lambda h: Tr31Header(
            "D", h.key_usage, "A", h.mode_of_use, h.key_version, h.exportability, h.optional_blocks
        )
    ),
    key=aes_keys,
)
def test_tr31_version_d_matches_psec(kbpk: bytes, header: Tr31Header, key: bytes) -> None:
    ours = tr31_wrap(kbpk, header, key)
    assert psec.tr31.unwrap(kbpk, ours)[1] == key
    theirs = psec.tr31.wrap(kbpk, "D0000" + ours[5 : _header_len(ours)], key)
    assert tr31_unwrap(kbpk, theirs)[1] == key


def _header_len(block: str) -> int:
    from switch.hsm.primitives.tr31 import parse_tr31_header

    return parse_tr31_header(block)[1]


@examples
@given(kbpk=tdes_keys, key=tdes_keys, flip=st.integers(min_value=0))
def test_tr31_detects_any_change(kbpk: bytes, key: bytes, flip: int) -> None:
    from switch.hsm.primitives import KeyBlockError

    block = tr31_wrap(kbpk, Tr31Header("B", "P0", "T", "E", "00", "N"), key)
    index = 5 + flip % (len(block) - 5)  # anything after the length field
    swapped = "0" if block[index] != "0" else "1"
    with pytest.raises(KeyBlockError):
        tr31_unwrap(kbpk, block[:index] + swapped + block[index + 1 :])


ksns = (
    st.tuples(st.binary(min_size=8, max_size=8), st.integers(1, (1 << 21) - 1))
    .filter(lambda t: bin(t[1]).count("1") <= 10)
    .map(lambda t: ((int.from_bytes(t[0], "big") << 16 & ~0x1FFFFF) | t[1]).to_bytes(10, "big"))
)


@examples
@given(bdk=tdes_keys, ksn=ksns, pin=pins, pan=pans)
def test_tdes_dukpt_matches_pydukpt(bdk: bytes, ksn: bytes, pin: str, pan: str) -> None:
    ipek = dukpt_tdes.derive_ipek(bdk, ksn)
    assert ipek == pydukpt.derive_ipek(bdk, ksn)
    key = dukpt_tdes.derive_transaction_key(ipek, ksn)
    assert key == pydukpt.derive_key(ipek, ksn)
    pin_key = dukpt_tdes.derive_pin_key(bdk, ksn)
    assert pin_key == pydukpt.pin_key(key)
    block = tdes_ecb_encrypt(pin_key, pin_blocks.pin_block_format0(pin, pan))
    assert pydukpt.decrypt_pin(key, block, pan) == pin
