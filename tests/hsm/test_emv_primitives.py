"""EMV primitives (switch/hsm/primitives/emv.py) against published vectors and against pyemv.

Goal: the option A master key, the common session key, the ARQC (MAC alg 3, padding 2) and
the ARPCs are the ones the EMV algorithms give. Method: known answers from
tests/hsm/vectors/emv.json (each names its source), then hypothesis-generated random keys,
PANs, PSNs, ATCs and data checked against pyemv, an independent implementation used as an
oracle only (a test dependency; switch/ never imports it).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyemv import ac as pyemv_ac
from pyemv import kd as pyemv_kd

from switch.hsm.primitives.des import adjust_odd_parity
from switch.hsm.primitives.emv import (
    application_cryptogram,
    arpc_method1,
    arpc_method2,
    atc_diversification,
    derive_common_session_key,
    derive_icc_master_key_option_a,
    session_key_for_atc,
)
from switch.hsm.primitives.errors import EmvDataError, KeyLengthError
from switch.hsm.primitives.kcv import kcv_tdes
from tests.hsm.vector_files import cases, load

h = bytes.fromhex
# pyemv (the oracle) uses cryptography's deprecated two-key TDES path; ours must not (below).
pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:pyemv"
)


def upper(data: bytes) -> str:
    return data.hex().upper()


@pytest.mark.parametrize("v", cases("emv", "icc_master_key_option_a"))
def test_icc_master_key_option_a(v: dict[str, str]) -> None:
    mk = derive_icc_master_key_option_a(h(v["imk"]), v["pan"], v["psn"])
    assert upper(adjust_odd_parity(mk)) == v["mk"]


@pytest.mark.parametrize("v", cases("emv", "common_session_key"))
def test_common_session_key(v: dict[str, str]) -> None:
    sk = derive_common_session_key(h(v["mk"]), h(v["r"]))
    assert upper(adjust_odd_parity(sk)) == v["sk"]


@pytest.mark.parametrize("v", cases("emv", "application_cryptogram"))
def test_application_cryptogram(v: dict[str, str]) -> None:
    assert upper(application_cryptogram(h(v["sk"]), h(v["data"]))) == v["ac"]


@pytest.mark.parametrize("v", cases("emv", "arpc_method1"))
def test_arpc_method1(v: dict[str, str]) -> None:
    assert upper(arpc_method1(h(v["sk"]), h(v["arqc"]), h(v["arc"]))) == v["arpc"]


@pytest.mark.parametrize("v", cases("emv", "arpc_method2"))
def test_arpc_method2(v: dict[str, str]) -> None:
    arpc = arpc_method2(h(v["sk"]), h(v["arqc"]), h(v["csu"]), h(v["proprietary"]))
    assert upper(arpc) == v["arpc"]


@pytest.mark.parametrize("v", cases("emv", "chain"))
def test_whole_chain_with_key_check_digits(v: dict[str, str]) -> None:
    """IMK -> MK (option A) -> SK (common, arbitrary R) -> ARQC -> ARPC 1 and 2."""
    imk = h(v["imk"])
    assert kcv_tdes(imk, 2) == v["imk_kcv"]
    mk = derive_icc_master_key_option_a(imk, v["pan"], v["psn"])
    assert kcv_tdes(mk, 2) == v["mk_kcv"]
    sk = derive_common_session_key(mk, h(v["r"]))
    assert kcv_tdes(sk, 2) == v["sk_kcv"]
    arqc = application_cryptogram(sk, h(v["data"]))
    assert upper(arqc) == v["arqc"]
    assert upper(arpc_method1(mk, arqc, h(v["arc"]))) == v["arpc"]
    assert upper(arpc_method2(sk, arqc, h(v["csu"]), h(v["proprietary"]))) == v["arpc2"]
    assert upper(arpc_method2(sk, arqc, h(v["csu"]))) == v["arpc2_no_proprietary"]


def test_every_vector_names_its_source() -> None:
    for section, entries in load("emv").items():
        if section.startswith("_"):
            continue
        assert entries and all(e["source"].strip() for e in entries), section


def test_section_11_diversification_and_ascii_arc() -> None:
    """Hand-written from section 11: R = ATC || 00*6; ARC of '51' is 3531."""
    assert atc_diversification(0x1234) == h("1234000000000000")
    assert atc_diversification(0) == bytes(8)
    sk = h("29B33180E567CE38EA4CBC9D753B0E61")
    arqc = h("FA624250B008B59A")
    # ARPC method 1 of '00' differs from that of 0000 (binary): the ARC is ASCII.
    assert arpc_method1(sk, arqc, b"00") != arpc_method1(sk, arqc, h("0000"))
    assert arpc_method1(sk, arqc, b"51") == arpc_method1(sk, arqc, h("3531"))


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda: derive_icc_master_key_option_a(bytes(8), "6225880123456789", "01"),
            KeyLengthError,
        ),
        (lambda: derive_icc_master_key_option_a(bytes(16), "62258801234", "01"), EmvDataError),
        (lambda: derive_icc_master_key_option_a(bytes(16), "6225880123456789", "1"), EmvDataError),
        (lambda: derive_icc_master_key_option_a(bytes(16), "622588012345678X", "01"), EmvDataError),
        (lambda: derive_icc_master_key_option_a(bytes(16), "6225880123456789", "٠١"), EmvDataError),
        (lambda: atc_diversification(0x10000), EmvDataError),
        (lambda: atc_diversification(-1), EmvDataError),
        (lambda: derive_common_session_key(bytes(16), bytes(7)), EmvDataError),
        (lambda: arpc_method1(bytes(16), bytes(7), b"00"), EmvDataError),
        (lambda: arpc_method1(bytes(16), bytes(8), b"000"), EmvDataError),
        (lambda: arpc_method2(bytes(16), bytes(8), bytes(3)), EmvDataError),
        (lambda: arpc_method2(bytes(16), bytes(8), bytes(4), bytes(9)), EmvDataError),
        (lambda: application_cryptogram(bytes(24), b"x"), KeyLengthError),
    ],
)
def test_bad_inputs_raise_typed_errors(call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]


keys = st.binary(min_size=16, max_size=16)
pans = st.text(alphabet="0123456789", min_size=12, max_size=19)
psns = st.text(alphabet="0123456789", min_size=2, max_size=2)
atcs = st.integers(min_value=0, max_value=0xFFFF)


@given(imk=keys, pan=pans, psn=psns, atc=atcs, data=st.binary(max_size=80))
def test_arqc_chain_matches_pyemv(imk: bytes, pan: str, psn: str, atc: int, data: bytes) -> None:
    """Random inputs: our chain agrees with pyemv's option A + common SK + generate_ac."""
    mk = pyemv_kd.derive_icc_mk_a(imk, pan, psn)
    sk = pyemv_kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))
    expected = pyemv_ac.generate_ac(sk, data, pyemv_ac.PaddingType.EMV)
    ours_sk = session_key_for_atc(imk, pan, psn, atc)
    assert adjust_odd_parity(ours_sk) == sk
    assert application_cryptogram(ours_sk, data) == expected


@given(sk=keys, arqc=st.binary(min_size=8, max_size=8), arc=st.binary(min_size=2, max_size=2))
def test_arpc_method1_matches_pyemv(sk: bytes, arqc: bytes, arc: bytes) -> None:
    assert arpc_method1(sk, arqc, arc) == pyemv_ac.generate_arpc_1(sk, arqc, arc)


@given(
    sk=keys,
    arqc=st.binary(min_size=8, max_size=8),
    csu=st.binary(min_size=4, max_size=4),
    proprietary=st.binary(max_size=8),
)
def test_arpc_method2_matches_pyemv(sk: bytes, arqc: bytes, csu: bytes, proprietary: bytes) -> None:
    expected = pyemv_ac.generate_arpc_2(sk, arqc, csu, proprietary)
    assert arpc_method2(sk, arqc, csu, proprietary) == expected
