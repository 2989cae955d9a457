"""SoftwareHsm end to end: each operation works with the right key and refuses the wrong one.

Terminal-side values (PIN blocks, MACs, unwrapped blocks) are produced with the
pure primitives and clear keys, as the terminal would, and fed to the HSM.
"""

from __future__ import annotations

import pytest

from switch.hsm import (
    CardDataError,
    CvvVerificationFailed,
    KeyHandleError,
    KeyMaterialError,
    KeyUsageError,
    MacVerificationFailed,
    PinFormatRefused,
    PinVerificationData,
    PinVerificationFailed,
    SoftwareHsm,
    TestModeRequired,
)
from switch.hsm.primitives import (
    aes_cmac,
    dukpt_aes,
    dukpt_tdes,
    encrypt_pin_block,
    kcv_tdes,
    retail_mac,
    tr31_unwrap,
)

TMK_CLEAR = "0123456789ABCDEFFEDCBA9876543210"
PAN = "4761739001010119"


async def _terminal(hsm: SoftwareHsm, key_type: str = "tdes") -> tuple[str, bytes, bytes, str, str]:
    """A TMK known in clear to the 'terminal', and a key exchange under it."""
    algorithm = "A" if key_type == "aes" else "T"
    tmk = await hsm.import_clear_key_test_mode(TMK_CLEAR, usage="K0", algorithm=algorithm)
    issued = await hsm.issue_terminal_working_keys(tmk)
    _, tpk = tr31_unwrap(bytes.fromhex(TMK_CLEAR), issued.tpk_block)
    _, tak = tr31_unwrap(bytes.fromhex(TMK_CLEAR), issued.tak_block)
    return tmk, tpk, tak, issued.tpk, issued.tak


async def _ibm_card(hsm: SoftwareHsm, pin: str = "1234") -> PinVerificationData:
    pvk = await hsm.generate_key("V1")
    return await hsm.pin_verification_data_test_mode(pvk=pvk, pan=PAN, pin=pin)


async def test_generated_key_has_kcv_and_attributes(hsm: SoftwareHsm) -> None:
    handle = await hsm.generate_key("P0")
    info = await hsm.key_info(handle)
    assert (info.usage, info.algorithm, info.mode_of_use, info.length_bytes) == ("P0", "T", "B", 16)
    assert len(info.kcv) == 6 and info.kcv == await hsm.key_check_value(handle)
    assert handle.startswith("D") and TMK_CLEAR not in handle


async def test_key_exchange_blocks_follow_spec_7(hsm: SoftwareHsm) -> None:
    tmk = await hsm.import_clear_key_test_mode(TMK_CLEAR, usage="K0")
    issued = await hsm.issue_terminal_working_keys(tmk)
    kp_header, tpk = tr31_unwrap(bytes.fromhex(TMK_CLEAR), issued.tpk_block)
    km_header, tak = tr31_unwrap(bytes.fromhex(TMK_CLEAR), issued.tak_block)
    assert issued.tpk_block[:1] == "B" and issued.tpk_block[5:12] == "P0TE00N"
    assert issued.tak_block[5:12] == "M3TC00N"
    assert kcv_tdes(tpk) == issued.tpk_kcv and kcv_tdes(tak) == issued.tak_kcv
    assert (kp_header.key_usage, km_header.key_usage) == ("P0", "M3")


async def test_aes_terminal_gets_version_d_blocks(hsm: SoftwareHsm) -> None:
    tmk = await hsm.import_clear_key_test_mode(TMK_CLEAR, usage="K0", algorithm="A")
    issued = await hsm.issue_terminal_working_keys(tmk)
    assert issued.tpk_block.startswith("D") and issued.tpk_block[5:12] == "P0AE00N"
    assert issued.tak_block[5:12] == "M6AC00N"


async def test_verify_pin_ibm3624(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm)
    card = await _ibm_card(hsm, "1234")
    good = encrypt_pin_block(tpk_clear, "1234", PAN).hex().upper()
    await hsm.verify_pin(tpk=tpk, pin_block=good, pan=PAN, verification=card)
    bad = encrypt_pin_block(tpk_clear, "1235", PAN).hex().upper()
    with pytest.raises(PinVerificationFailed):
        await hsm.verify_pin(tpk=tpk, pin_block=bad, pan=PAN, verification=card)
    longer = encrypt_pin_block(tpk_clear, "12345", PAN).hex().upper()
    with pytest.raises(PinVerificationFailed):
        await hsm.verify_pin(tpk=tpk, pin_block=longer, pan=PAN, verification=card)


@pytest.mark.parametrize("block", ["", "XYZ", "00" * 8, "0" * 15, "F" * 16])
async def test_malformed_pin_block_is_a_failed_verification(hsm: SoftwareHsm, block: str) -> None:
    _, _, _, tpk, _ = await _terminal(hsm)
    with pytest.raises(PinVerificationFailed):
        await hsm.verify_pin(tpk=tpk, pin_block=block, pan=PAN, verification=await _ibm_card(hsm))


async def test_verify_pin_visa_pvv_and_other_formats(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm)
    pvk = await hsm.generate_key("V2")
    card = await hsm.pin_verification_data_test_mode(
        pvk=pvk, pan=PAN, pin="9876", method="visa_pvv", pvki="1"
    )
    for fmt in (0, 1, 3):
        block = encrypt_pin_block(tpk_clear, "9876", PAN, fmt).hex().upper()
        await hsm.verify_pin(
            tpk=tpk, pin_block=block, pan=PAN, verification=card, pin_block_format=fmt
        )
    with pytest.raises(PinVerificationFailed):
        block = encrypt_pin_block(tpk_clear, "9875", PAN).hex().upper()
        await hsm.verify_pin(tpk=tpk, pin_block=block, pan=PAN, verification=card)


async def test_verify_pin_format4_aes(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm, "aes")
    card = await _ibm_card(hsm, "246810")
    block = encrypt_pin_block(tpk_clear, "246810", PAN, 4).hex().upper()
    await hsm.verify_pin(tpk=tpk, pin_block=block, pan=PAN, verification=card, pin_block_format=4)
    with pytest.raises(KeyUsageError):  # an AES key cannot decrypt a TDES format
        await hsm.verify_pin(tpk=tpk, pin_block=block[:16], pan=PAN, verification=card)


async def test_wrong_key_usage_is_refused(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, tak = await _terminal(hsm)
    card = await _ibm_card(hsm)
    block = encrypt_pin_block(tpk_clear, "1234", PAN).hex().upper()
    with pytest.raises(KeyUsageError):  # a MAC key as PIN key
        await hsm.verify_pin(tpk=tak, pin_block=block, pan=PAN, verification=card)
    with pytest.raises(KeyUsageError):  # a PIN key as MAC key
        await hsm.generate_mac(tpk, b"data")
    pvv_key = await hsm.generate_key("V2")
    with pytest.raises(KeyUsageError):  # a PVV key used for IBM 3624
        wrong = PinVerificationData("ibm3624", pvv_key, card.value)
        await hsm.verify_pin(tpk=tpk, pin_block=block, pan=PAN, verification=wrong)
    generate_only = await hsm.generate_key("M3", mode_of_use="G")
    with pytest.raises(KeyUsageError):  # mode G may not verify
        await hsm.verify_mac(generate_only, b"x", "0" * 16)


async def test_handle_from_another_lmk_is_refused(hsm: SoftwareHsm) -> None:
    other = SoftwareHsm(bytes(32))
    foreign = await other.generate_key("P0")
    with pytest.raises(KeyHandleError):
        await hsm.key_check_value(foreign)
    tampered = foreign[:-1] + ("0" if foreign[-1] != "0" else "1")
    with pytest.raises(KeyHandleError):
        await other.key_check_value(tampered)
    with pytest.raises(KeyHandleError):
        await hsm.key_check_value("not a handle")


async def test_change_pin_returns_new_data_and_old_pin_stops(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm)
    card = await _ibm_card(hsm, "1234")

    def block(pin: str) -> str:
        return encrypt_pin_block(tpk_clear, pin, PAN).hex().upper()

    new = await hsm.change_pin(
        tpk=tpk,
        old_pin_block=block("1234"),
        new_pin_block=block("4321"),
        pan=PAN,
        verification=card,
    )
    await hsm.verify_pin(tpk=tpk, pin_block=block("4321"), pan=PAN, verification=new)
    with pytest.raises(PinVerificationFailed):
        await hsm.verify_pin(tpk=tpk, pin_block=block("1234"), pan=PAN, verification=new)
    with pytest.raises(PinVerificationFailed):  # wrong old PIN
        await hsm.change_pin(
            tpk=tpk,
            old_pin_block=block("0000"),
            new_pin_block=block("1111"),
            pan=PAN,
            verification=card,
        )


async def test_translate_pin_and_refuse_weaker_format(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm)
    zpk_clear = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")
    zpk = await hsm.import_clear_key_test_mode(zpk_clear.hex(), usage="P0")
    source = encrypt_pin_block(tpk_clear, "1234", PAN).hex().upper()
    out = await hsm.translate_pin(
        source_key=tpk, target_key=zpk, pin_block=source, pan=PAN, target_format=3
    )
    from switch.hsm.primitives import decrypt_pin_block

    assert decrypt_pin_block(zpk_clear, bytes.fromhex(out), PAN, 3) == "1234"
    with pytest.raises(PinFormatRefused):
        await hsm.translate_pin(
            source_key=tpk, target_key=zpk, pin_block=source, pan=PAN, target_format=1
        )


async def test_dukpt_tdes_and_aes_pin_verification(hsm: SoftwareHsm) -> None:
    card = await _ibm_card(hsm, "1234")
    bdk_clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    bdk = await hsm.import_clear_key_test_mode(bdk_clear.hex(), usage="B0")
    ksn = bytes.fromhex("FFFF9876543210E00003")
    block = encrypt_pin_block(dukpt_tdes.derive_pin_key(bdk_clear, ksn), "1234", PAN).hex()
    await hsm.verify_pin_dukpt(bdk=bdk, ksn=ksn.hex(), pin_block=block, pan=PAN, verification=card)
    aes_bdk_clear = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    aes_bdk = await hsm.import_clear_key_test_mode(aes_bdk_clear.hex(), usage="B0", algorithm="A")
    aes_ksn = bytes.fromhex("123456789012345600000005")
    pin_key = dukpt_aes.derive_working_key(
        aes_bdk_clear, aes_ksn, dukpt_aes.KeyUsage.PIN_ENCRYPTION
    )
    aes_block = encrypt_pin_block(pin_key, "1234", PAN, 4).hex()
    await hsm.verify_pin_dukpt(
        bdk=aes_bdk,
        ksn=aes_ksn.hex(),
        pin_block=aes_block,
        pan=PAN,
        verification=card,
        pin_block_format=4,
    )
    with pytest.raises(PinVerificationFailed):  # the next KSN derives another key
        await hsm.verify_pin_dukpt(
            bdk=bdk, ksn="FFFF9876543210E00004", pin_block=block, pan=PAN, verification=card
        )


async def test_mac_generate_and_verify(hsm: SoftwareHsm) -> None:
    _, _, tak_clear, _, tak = await _terminal(hsm)
    data = b"0200F23A44810AE08000..."
    mac = await hsm.generate_mac(tak, data)
    assert mac == retail_mac(tak_clear, data).hex().upper()
    await hsm.verify_mac(tak, data, mac)
    await hsm.verify_mac(tak, data, mac.lower())
    for bad in (mac[:-1] + ("0" if mac[-1] != "0" else "1"), "", "Z" * 16, "王" * 16):
        with pytest.raises(MacVerificationFailed):
            await hsm.verify_mac(tak, data, bad)
    with pytest.raises(MacVerificationFailed):
        await hsm.verify_mac(tak, data + b"!", mac)


async def test_aes_cmac_mac(hsm: SoftwareHsm) -> None:
    _, _, tak_clear, _, tak = await _terminal(hsm, "aes")
    mac = await hsm.generate_mac(tak, b"hello")
    assert mac == aes_cmac(tak_clear, b"hello")[:8].hex().upper()
    await hsm.verify_mac(tak, b"hello", mac)


async def test_cvv_generate_verify(hsm: SoftwareHsm) -> None:
    cvk = await hsm.import_clear_key_test_mode("0123456789ABCDEFFEDCBA9876543210", usage="C0")
    value = await hsm.generate_cvv(
        cvk=cvk, pan="4123456789012345", expiry="8701", service_code="101"
    )
    assert value == "561"
    await hsm.verify_cvv(
        cvk=cvk, pan="4123456789012345", expiry="8701", service_code="101", cvv="561"
    )
    with pytest.raises(CvvVerificationFailed):
        await hsm.verify_cvv(
            cvk=cvk, pan="4123456789012345", expiry="8701", service_code="101", cvv="562"
        )


async def test_export_import_round_trip(hsm: SoftwareHsm) -> None:
    tdes_kek = await hsm.generate_key("K0")
    aes_kek = await hsm.generate_key("K0", algorithm="A", length_bytes=32)
    key = await hsm.generate_key("M3", exportable=True)
    for kek, version in ((tdes_kek, "B"), (aes_kek, "D")):
        block = await hsm.export_key(key, kek=kek)
        assert block.startswith(version)
        again = await hsm.import_key(block, kek=kek)
        assert await hsm.key_check_value(again) == await hsm.key_check_value(key)
    aes_key = await hsm.generate_key("M6", algorithm="A")
    with pytest.raises(KeyUsageError):
        await hsm.export_key(aes_key, kek=tdes_kek)
    # Issue 11 item 3: PVKs and working keys are non-exportable unless asked, and a key
    # issued at a key exchange cannot be exported again after its one delivery.
    issued = await hsm.issue_terminal_working_keys(tdes_kek)
    for secret in (
        await hsm.generate_key("P0"),
        await hsm.generate_key("V1"),
        await hsm.generate_key("M3"),
        issued.tpk,
        issued.tak,
    ):
        assert (await hsm.key_info(secret)).exportability == "N"
        with pytest.raises(KeyUsageError):
            await hsm.export_key(secret, kek=tdes_kek)
    # Only a key-encryption key with an encrypting mode wraps, and never a longer key.
    decrypt_only = await hsm.generate_key("K0", mode_of_use="D")
    long_key = await hsm.generate_key("D0", length_bytes=24, exportable=True)
    for not_a_wrapper in (decrypt_only, await hsm.generate_key("D0"), key):
        with pytest.raises(KeyUsageError):
            await hsm.export_key(key, kek=not_a_wrapper)
    with pytest.raises(KeyUsageError):
        await hsm.export_key(long_key, kek=tdes_kek)
    with pytest.raises(KeyUsageError):  # narrowing only: C cannot become B
        await hsm.export_key(key, kek=tdes_kek, mode_of_use="B")
    with pytest.raises(KeyMaterialError):
        await hsm.import_key("B0080P0TE00E0000" + "00" * 32, kek=tdes_kek)


async def test_components_form_the_same_key(hsm: SoftwareHsm) -> None:
    handle, components, kcv = await hsm.generate_key_components("K0", count=3)
    assert len(components) == 3 and all(len(c) == 32 and len(k) == 6 for c, k in components)
    formed = await hsm.form_key_from_components(
        [c for c, _ in components], usage="K0", component_kcvs=[k for _, k in components]
    )
    assert await hsm.key_check_value(formed) == kcv == await hsm.key_check_value(handle)
    with pytest.raises(KeyMaterialError):
        await hsm.form_key_from_components(
            [c for c, _ in components], usage="K0", component_kcvs=["000000"] * 3
        )
    with pytest.raises(KeyMaterialError):
        await hsm.form_key_from_components([components[0][0]], usage="K0")
    with pytest.raises(KeyMaterialError):
        await hsm.form_key_from_components(["00" * 16, "00" * 8], usage="K0")


async def test_tmk_ceremony(hsm: SoftwareHsm) -> None:
    created = await hsm.create_terminal_master_key("tdes")
    from switch.hsm.primitives import xor_bytes

    a, b = (bytes.fromhex(c) for c, _ in created.components)
    assert kcv_tdes(xor_bytes(a, b)) == created.kcv
    assert "hidden" in repr(created) and created.components[0][0] not in repr(created)
    with pytest.raises(KeyMaterialError):
        await hsm.create_terminal_master_key("rsa")


async def test_test_mode_operations_refused_in_production(prod_hsm: SoftwareHsm) -> None:
    pvk = await prod_hsm.generate_key("V1")
    with pytest.raises(TestModeRequired):
        await prod_hsm.import_clear_key_test_mode(TMK_CLEAR, usage="K0")
    with pytest.raises(TestModeRequired):
        await prod_hsm.pin_verification_data_test_mode(pvk=pvk, pan=PAN, pin="1234")
    with pytest.raises(TestModeRequired):
        await prod_hsm.issue_pin_mailer_test_mode(pvk=pvk, pan=PAN)


async def test_pin_mailer_in_test_mode(hsm: SoftwareHsm) -> None:
    _, tpk_clear, _, tpk, _ = await _terminal(hsm)
    pvk = await hsm.generate_key("V1")
    mailer = await hsm.issue_pin_mailer_test_mode(pvk=pvk, pan=PAN)
    assert len(mailer.pin) == 4 and mailer.pin not in repr(mailer).split("verification")[0]
    block = encrypt_pin_block(tpk_clear, mailer.pin, PAN).hex()
    await hsm.verify_pin(tpk=tpk, pin_block=block, pan=PAN, verification=mailer.verification)


async def test_card_data_at_rest(hsm: SoftwareHsm, lmk: bytes) -> None:
    token = await hsm.encrypt_pan(PAN)
    assert PAN not in token and token != await hsm.encrypt_pan(PAN)
    assert await hsm.decrypt_pan(token) == PAN
    assert await hsm.pan_lookup_hash(PAN) == await SoftwareHsm(lmk).pan_lookup_hash(PAN)
    assert await hsm.pan_lookup_hash(PAN) != await SoftwareHsm(bytes(32)).pan_lookup_hash(PAN)
    with pytest.raises(CardDataError):
        await SoftwareHsm(bytes(32)).decrypt_pan(token)
    with pytest.raises(CardDataError):
        await hsm.decrypt_pan(token[:-2] + "AA")
    with pytest.raises(CardDataError):
        await hsm.encrypt_pan("4761-7390")


def test_verification_data_json_round_trip() -> None:
    data = PinVerificationData("visa_pvv", "D0112V2TC00E0000ABC", "1234", "1")
    assert PinVerificationData.from_json(data.to_json()) == data
    assert (
        PinVerificationData.from_json({"method": "ibm3624", "pvk": "D1", "value": "0042"}).pvki
        is None
    )
    from switch.hsm import HsmError

    for bad in ("{}", "not json", '{"method": "md5", "pvk": "x", "value": "1"}'):
        with pytest.raises(HsmError):
            PinVerificationData.from_json(bad)
