"""SoftwareHsm EMV operations: IMK-AC under the LMK (usage E0), ARQC verification, ARPC.

Goal: the public HSM API verifies exactly the ARQC a card computes and answers with the ARPC
a card accepts, while the IMK never leaves. Method: the "card" side is pyemv (an independent
implementation, test dependency only) holding the clear IMK; the HSM holds only its handle.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyemv import ac as pyemv_ac
from pyemv import kd as pyemv_kd

from switch.hsm import CryptogramFailed, HsmError, KeyUsageError, SoftwareHsm
from switch.hsm.primitives import tr31_unwrap

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:pyemv"
)

IMK = "0123456789ABCDEFFEDCBA9876543210"
PAN = "6225880123456789"
PSN = "01"
# Section 11's data D for a 1,000.00 CNY withdrawal, ATC 0x0007, 9F10 of 7 bytes.
DATA = bytes.fromhex(
    "000000100000"  # 9F02
    "000000000000"  # 9F03
    "0156"  # 9F1A
    "0000000000"  # 95
    "0156"  # 5F2A
    "261129"  # 9A
    "01"  # 9C
    "1A2B3C4D"  # 9F37
    "3900"  # 82
    "0007"  # 9F36
    "06010A03A00000"  # 9F10
)
ATC = 7


def card_arqc(imk_hex: str, pan: str, psn: str, atc: int, data: bytes) -> tuple[bytes, bytes]:
    """What the chip computes (pyemv): (SK-AC, ARQC)."""
    mk = pyemv_kd.derive_icc_mk_a(bytes.fromhex(imk_hex), pan, psn)
    sk = pyemv_kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))
    return sk, pyemv_ac.generate_ac(sk, data, pyemv_ac.PaddingType.EMV)


async def _imk(hsm: SoftwareHsm, clear: str = IMK) -> str:
    return await hsm.import_clear_key_test_mode(clear, usage="E0")


async def test_imk_ac_is_e0_derive_only_and_never_exportable(hsm: SoftwareHsm) -> None:
    imk = await _imk(hsm)  # asks for the default, exportable=True: refused silently to N
    info = await hsm.key_info(imk)
    assert (info.usage, info.algorithm, info.mode_of_use, info.exportability) == (
        "E0",
        "T",
        "X",
        "N",
    )
    kek = await hsm.generate_key("K0")
    with pytest.raises(KeyUsageError):
        await hsm.export_key(imk, kek=kek)
    generated = await hsm.generate_key("E0", exportable=True)
    assert (await hsm.key_info(generated)).exportability == "N"


async def test_imported_e0_block_is_stored_non_exportable(hsm: SoftwareHsm) -> None:
    """An IMK arriving in a TR-31 block marked exportable is kept, but can never leave."""
    from switch.hsm.primitives import Tr31Header, tr31_wrap

    kek_clear = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")
    kek = await hsm.import_clear_key_test_mode(kek_clear.hex(), usage="K0")
    block = tr31_wrap(kek_clear, Tr31Header("B", "E0", "T", "X", "00", "E"), bytes.fromhex(IMK))
    imk = await hsm.import_key(block, kek=kek)
    assert (await hsm.key_info(imk)).exportability == "N"
    _, arqc = card_arqc(IMK, PAN, PSN, ATC, DATA)
    await hsm.verify_arqc(imk_ac=imk, pan=PAN, psn=PSN, atc=ATC, data=DATA, arqc=arqc)
    assert tr31_unwrap(kek_clear, block)[0].exportability == "E"  # the block really said E


async def test_arqc_verifies_and_arpc_is_what_the_card_expects(hsm: SoftwareHsm) -> None:
    imk = await _imk(hsm)
    sk, arqc = card_arqc(IMK, PAN, PSN, ATC, DATA)
    await hsm.verify_arqc(imk_ac=imk, pan=PAN, psn=PSN, atc=ATC, data=DATA, arqc=arqc)
    for code, arc in (("00", "3030"), ("51", "3531"), ("55", "3535")):
        arpc = await hsm.generate_arpc(
            imk_ac=imk, pan=PAN, psn=PSN, atc=ATC, data=DATA, arqc=arqc, response_code=code
        )
        assert arpc == pyemv_ac.generate_arpc_1(sk, arqc, bytes.fromhex(arc))


@pytest.mark.parametrize(
    "change",
    ["arqc", "pan", "psn", "atc", "data", "imk"],
)
async def test_any_wrong_input_fails_the_same_way(hsm: SoftwareHsm, change: str) -> None:
    imk = await _imk(hsm)
    other_imk = await _imk(hsm, "FEDCBA98765432100123456789ABCDEF")
    _, arqc = card_arqc(IMK, PAN, PSN, ATC, DATA)
    args = {"imk_ac": imk, "pan": PAN, "psn": PSN, "atc": ATC, "data": DATA, "arqc": arqc}
    args[change] = {
        "arqc": bytes([arqc[0] ^ 1]) + arqc[1:],
        "pan": "6225880123456788",
        "psn": "02",
        "atc": ATC + 1,
        "data": DATA[:-1] + b"\x01",
        "imk": other_imk,
    }[change]
    if change == "imk":
        args["imk_ac"] = args.pop("imk")
    with pytest.raises(CryptogramFailed, match=r"^cryptogram verification failed$"):
        await hsm.verify_arqc(**args)  # type: ignore[arg-type]
    with pytest.raises(CryptogramFailed):
        await hsm.generate_arpc(**args, response_code="00")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pan", "psn", "atc", "arqc"),
    [
        ("62258801234", PSN, ATC, bytes(8)),  # PAN too short
        ("6225880123456789", "1", ATC, bytes(8)),  # PSN not 2 digits
        ("6225880123456789", PSN, 70000, bytes(8)),  # ATC beyond 2 bytes
        ("6225880123456789", PSN, ATC, bytes(7)),  # ARQC not 8 bytes
    ],
)
async def test_malformed_inputs_are_failed_cryptograms(
    hsm: SoftwareHsm, pan: str, psn: str, atc: int, arqc: bytes
) -> None:
    imk = await _imk(hsm)
    with pytest.raises(CryptogramFailed):
        await hsm.verify_arqc(imk_ac=imk, pan=pan, psn=psn, atc=atc, data=DATA, arqc=arqc)


async def test_wrong_key_usage_and_bad_response_code_are_refused(hsm: SoftwareHsm) -> None:
    _, arqc = card_arqc(IMK, PAN, PSN, ATC, DATA)
    not_an_imk = await hsm.import_clear_key_test_mode(IMK, usage="K0")
    with pytest.raises(KeyUsageError):
        await hsm.verify_arqc(imk_ac=not_an_imk, pan=PAN, psn=PSN, atc=ATC, data=DATA, arqc=arqc)
    imk = await _imk(hsm)
    for bad in ("0", "000", "0\n", ""):
        with pytest.raises(HsmError):
            await hsm.generate_arpc(
                imk_ac=imk, pan=PAN, psn=PSN, atc=ATC, data=DATA, arqc=arqc, response_code=bad
            )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(
    imk=st.binary(min_size=16, max_size=16),
    pan=st.text(alphabet="0123456789", min_size=12, max_size=19),
    psn=st.text(alphabet="0123456789", min_size=2, max_size=2),
    atc=st.integers(min_value=0, max_value=0xFFFF),
    data=st.binary(min_size=33, max_size=65),
    code=st.sampled_from(["00", "05", "51", "55", "59", "61"]),
)
async def test_random_cards_verify_and_get_pyemv_arpc(
    hsm: SoftwareHsm, imk: bytes, pan: str, psn: str, atc: int, data: bytes, code: str
) -> None:
    handle = await _imk(hsm, imk.hex())
    sk, arqc = card_arqc(imk.hex(), pan, psn, atc, data)
    await hsm.verify_arqc(imk_ac=handle, pan=pan, psn=psn, atc=atc, data=data, arqc=arqc)
    arpc = await hsm.generate_arpc(
        imk_ac=handle, pan=pan, psn=psn, atc=atc, data=data, arqc=arqc, response_code=code
    )
    assert arpc == pyemv_ac.generate_arpc_1(sk, arqc, code.encode("ascii"))
