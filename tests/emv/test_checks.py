"""The chip check (switch/emv/checks.py): every branch of section 11, in its order.

Goal: each input section 11 names gets exactly its result (30, 05, 59 or passed), a pass
yields the ARPC a card accepts, and the decision never depends on which internal check
failed beyond its reason. Method: a real SoftwareHsm holding the IMK as an E0 handle; the
card side (tests/emv/card.py) computes genuine ARQCs with pyemv, also over deliberately
wrong table values, so a 59 is shown to come from the table check, not the cryptogram.
"""

from __future__ import annotations

import pytest
from pyemv import ac as pyemv_ac

from switch.emv.checks import (
    ChipOnFile,
    Fallback,
    FormatError,
    Fraud,
    NotChip,
    Passed,
    arpc_field55,
    check_chip,
    chip_format_error,
)
from switch.emv.icc_data import REQUIRED_TAGS
from switch.emv.tlv import encode_tlv_hex
from switch.hsm import KeyHandleError, SoftwareHsm
from tests.emv.card import IMK, PAN, PSN, card_tags, chip_0200, session_key

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:pyemv"
)


async def on_file(hsm: SoftwareHsm, atc_accepted: int | None = None, psn: str = PSN) -> ChipOnFile:
    imk = await hsm.import_clear_key_test_mode(IMK, usage="E0")
    return ChipOnFile(imk_ac=imk, psn=psn, atc_accepted=atc_accepted)


async def test_genuine_chip_withdrawal_passes_with_an_arpc_the_card_accepts(
    hsm: SoftwareHsm,
) -> None:
    tags = card_tags(atc=7)
    result = await check_chip(chip_0200(tags), await on_file(hsm), hsm)
    assert isinstance(result, Passed)
    assert (result.atc, result.arqc) == (7, tags["9F26"])
    field55 = await arpc_field55(hsm, result, "00")
    expected_arpc = pyemv_ac.generate_arpc_1(session_key(7), tags["9F26"], b"00")
    assert field55 == "910A" + expected_arpc.hex().upper() + "3030"


async def test_a_decline_after_a_pass_carries_an_arpc_over_its_own_arc(hsm: SoftwareHsm) -> None:
    tags = card_tags(atc=8)
    result = await check_chip(chip_0200(tags), await on_file(hsm, atc_accepted=7), hsm)
    assert isinstance(result, Passed)
    field55 = await arpc_field55(hsm, result, "51")
    expected_arpc = pyemv_ac.generate_arpc_1(session_key(8), tags["9F26"], b"51")
    assert field55 == "910A" + expected_arpc.hex().upper() + "3531"


async def test_pan_from_field_2_when_present(hsm: SoftwareHsm) -> None:
    fields = chip_0200(**{"2": PAN, "35": None})
    assert isinstance(await check_chip(fields, await on_file(hsm), hsm), Passed)
    wrong_pan = chip_0200(**{"2": "6225880123456788", "35": None})
    assert isinstance(await check_chip(wrong_pan, await on_file(hsm), hsm), Fraud)


def _without(tag: str) -> dict[str, str]:
    tags = card_tags()
    del tags[tag]
    return chip_0200(tags)


def _resized(tag: str) -> dict[str, str]:
    tags = card_tags()
    rule = REQUIRED_TAGS[tag]
    tags[tag] = bytes(rule.length_max + 1)
    return chip_0200(tags)


FORMAT_CASES = [
    ("no field 23", chip_0200(**{"23": None})),
    ("no field 55", chip_0200(**{"55": None})),
    ("field 23 not n3", chip_0200(**{"23": "01"})),
    ("malformed TLV", chip_0200(**{"55": "9F2608112233"})),
    ("odd hex length", chip_0200(**{"55": "9F2"})),
    ("padding byte", chip_0200(**{"55": "00" + encode_tlv_hex(card_tags())})),
    ("repeated tag", chip_0200(**{"55": encode_tlv_hex(card_tags()) + "82023900"})),
    ("9F10 empty", chip_0200({**card_tags(), "9F10": b""})),
    *[(f"missing {tag}", _without(tag)) for tag in REQUIRED_TAGS],
    *[(f"{tag} too long", _resized(tag)) for tag in REQUIRED_TAGS],
]


@pytest.mark.parametrize(("name", "fields"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
async def test_format_errors_are_30_for_any_card(
    hsm: SoftwareHsm, name: str, fields: dict[str, str]
) -> None:
    for chip in (await on_file(hsm), None):
        result = await check_chip(fields, chip, hsm)
        assert isinstance(result, FormatError), name
        assert result.response_code == "30"
    assert chip_format_error(fields) == result


async def test_unknown_tags_are_ignored(hsm: SoftwareHsm) -> None:
    tags = {**card_tags(), "9F33": bytes.fromhex("E0F8C8"), "84": bytes.fromhex("A0000003330101")}
    assert isinstance(await check_chip(chip_0200(tags), await on_file(hsm), hsm), Passed)


def test_chip_format_error_is_none_for_valid_and_stripe_requests() -> None:
    assert chip_format_error(chip_0200()) is None
    assert chip_format_error(chip_0200(**{"22": "021", "55": "zz", "23": None})) is None


async def test_chip_card_read_by_stripe_is_05(hsm: SoftwareHsm) -> None:
    for entry_mode in ("021", "020", "901"):
        fields = chip_0200(**{"22": entry_mode, "23": None, "55": None})
        result = await check_chip(fields, await on_file(hsm), hsm)
        assert result == Fallback()
        assert result.response_code == "05"
        assert await arpc_field55(hsm, result, "05") is None


async def test_stripe_card_by_stripe_is_not_checked_and_55_is_ignored(hsm: SoftwareHsm) -> None:
    fields = chip_0200(**{"22": "021", "55": "not even hex", "23": "9x9"})
    assert await check_chip(fields, None, hsm) == NotChip()


async def test_non_chip_card_with_chip_data_is_59(hsm: SoftwareHsm) -> None:
    result = await check_chip(chip_0200(), None, hsm)
    assert isinstance(result, Fraud)
    assert result.response_code == "59"
    assert "not a chip card" in result.reason


FRAUD_CASES = [
    # name, fields, PSN on file, reason fragment
    ("wrong PSN in 23", chip_0200(**{"23": "002"}), PSN, "field 23"),
    ("PSN on file differs", chip_0200(), "02", "field 23"),
    ("9F27 a TC", chip_0200(card_tags(cid="40")), PSN, "9F27"),
    ("9F27 an AAC", chip_0200(card_tags(cid="00")), PSN, "9F27"),
    ("9C balance inquiry", chip_0200(card_tags(transaction_type="31")), PSN, "9C"),
    ("9F02 mismatch", chip_0200(card_tags(amount="000000020000")), PSN, "9F02"),
    ("field 4 changed", chip_0200(**{"4": "000000020000"}), PSN, "9F02"),
    ("5F2A mismatch", chip_0200(card_tags(currency="0840")), PSN, "5F2A"),
    ("field 49 changed", chip_0200(**{"49": "840"}), PSN, "5F2A"),
    (
        "corrupted ARQC",
        chip_0200({**card_tags(), "9F26": bytes.fromhex("0011223344556677")}),
        PSN,
        "9F26",
    ),
    (
        "ARQC by another IMK",
        chip_0200(card_tags(imk="FEDCBA98765432100123456789ABCDEF")),
        PSN,
        "9F26",
    ),
    ("ARQC by the card's other PSN", chip_0200(card_tags(psn="02")), PSN, "9F26"),
    ("TVR changed after the ARQC", chip_0200({**card_tags(), "95": bytes(5)}), PSN, "9F26"),
]


@pytest.mark.parametrize(
    ("name", "fields", "psn", "reason"), FRAUD_CASES, ids=[c[0] for c in FRAUD_CASES]
)
async def test_fraud_is_59_with_its_reason(
    hsm: SoftwareHsm, name: str, fields: dict[str, str], psn: str, reason: str
) -> None:
    result = await check_chip(fields, await on_file(hsm, psn=psn), hsm)
    assert isinstance(result, Fraud), name
    assert result.response_code == "59"
    assert reason in result.reason
    assert await arpc_field55(hsm, result, "59") is None


@pytest.mark.parametrize(("atc", "accepted"), [(7, 7), (7, 8), (0, 0), (7, 65535)])
async def test_replayed_or_lower_atc_is_59(hsm: SoftwareHsm, atc: int, accepted: int) -> None:
    fields = chip_0200(card_tags(atc=atc))
    result = await check_chip(fields, await on_file(hsm, atc_accepted=accepted), hsm)
    assert isinstance(result, Fraud)
    assert "replay" in result.reason


@pytest.mark.parametrize(("atc", "accepted"), [(8, 7), (0, None), (65535, 65534)])
async def test_greater_atc_passes(hsm: SoftwareHsm, atc: int, accepted: int | None) -> None:
    fields = chip_0200(card_tags(atc=atc))
    result = await check_chip(fields, await on_file(hsm, atc_accepted=accepted), hsm)
    assert isinstance(result, Passed)
    assert result.atc == atc


async def test_unreadable_key_on_file_is_a_malfunction_not_fraud(hsm: SoftwareHsm) -> None:
    chip = ChipOnFile(imk_ac="D0000E0TX00N0000" + "00" * 40, psn=PSN, atc_accepted=None)
    with pytest.raises(KeyHandleError):
        await check_chip(chip_0200(), chip, hsm)


async def test_results_hide_keys_and_pan_in_repr(hsm: SoftwareHsm) -> None:
    chip = await on_file(hsm)
    result = await check_chip(chip_0200(), chip, hsm)
    assert isinstance(result, Passed)
    text = repr(result) + repr(chip)
    assert chip.imk_ac not in text
    assert PAN not in text
