"""Walk the whole public API of ``switch.hsm`` and the ``keys`` CLI: no clear PIN or key leaks.

Every public coroutine method of SoftwareHsm is called (the test fails if a new
method is added without being listed here) with keys whose clear values the
test knows; every return value is rendered (repr, str, JSON-ish) and searched
for those clear values. The documented exceptions are checked to be exactly
that: key components at generation, and the PIN mailer in test mode.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import switch.hsm
from switch.cli import main
from switch.config import Config
from switch.hsm import PinVerificationData, SoftwareHsm
from switch.hsm.keystore import KeyStore
from switch.hsm.lmk import load_lmk
from switch.hsm.primitives import dukpt_tdes, encrypt_pin_block, tr31_unwrap
from switch.hsm.primitives.emv import (
    application_cryptogram,
    derive_icc_master_key_option_a,
    session_key_for_atc,
)

PIN = "739182645081"  # 12 digits: cannot appear by chance in the outputs
NEW_PIN = "550193847261"
PAN = "6221234567890123"
CLEAR = {
    "tmk": "0123456789ABCDEFFEDCBA9876543210",
    "pvk": "1C2965473CE206BB855B01533782CEAB",
    "pvk2": "A7D3F0E1B29C4D5E6F708192A3B4C5D6",
    "cvk": "0123456789ABCDEFFEDCBA9876543211",
    "bdk": "0123456789ABCDEFFEDCBA9876543212",
    "kek": "89E88CF7931444F334BD7547FC3F380C",
    "imk_ac": "0123456789ABCDEFFEDCBA9876543213",
}
# Methods whose results may contain clear material, and why (docs/hsm.md).
DOCUMENTED_EXCEPTIONS = {
    "generate_key_components": "clear components printed once at a key ceremony",
    "create_terminal_master_key": "TMK components printed at terminal creation",
    "issue_pin_mailer_test_mode": "PIN mailer, test mode only",
}


def render(value: Any) -> str:
    """Every way a caller could look at a value."""
    parts = [repr(value), str(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts += [render(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, list | tuple):
        parts += [render(v) for v in value]
    return "\n".join(parts).upper()


def clear_key_hex(lmk: bytes, text: str) -> set[str]:
    """Clear values of every LMK handle found in ``text`` (the test peeks with the LMK)."""
    store = KeyStore(lmk)
    found = set()
    for handle in re.findall(r"D\d{4}[0-9A-Z]{11}[0-9A-F]+", text):
        try:
            found.add(store.unwrap(handle).key.hex().upper())
        except switch.hsm.KeyHandleError:
            continue
    return found


async def test_every_public_hsm_method_keeps_secrets(lmk: bytes) -> None:
    hsm = SoftwareHsm(lmk, test_mode=True)
    handles = {
        name: await hsm.import_clear_key_test_mode(clear, usage=usage)
        for name, clear, usage in (
            ("tmk", CLEAR["tmk"], "K0"),
            ("pvk", CLEAR["pvk"], "V1"),
            ("pvk2", CLEAR["pvk2"], "V2"),
            ("cvk", CLEAR["cvk"], "C0"),
            ("bdk", CLEAR["bdk"], "B0"),
            ("kek", CLEAR["kek"], "K0"),
            ("imk_ac", CLEAR["imk_ac"], "E0"),
        )
    }
    issued = await hsm.issue_terminal_working_keys(handles["tmk"])
    tmk = bytes.fromhex(CLEAR["tmk"])
    tpk_clear, tak_clear = (tr31_unwrap(tmk, b)[1] for b in (issued.tpk_block, issued.tak_block))
    card = await hsm.pin_verification_data_test_mode(pvk=handles["pvk"], pan=PAN, pin=PIN)
    block = encrypt_pin_block(tpk_clear, PIN, PAN).hex()
    new_block = encrypt_pin_block(tpk_clear, NEW_PIN, PAN).hex()
    ksn = "FFFF9876543210E00001"
    dukpt_block = encrypt_pin_block(
        dukpt_tdes.derive_pin_key(bytes.fromhex(CLEAR["bdk"]), bytes.fromhex(ksn)), PIN, PAN
    ).hex()
    zpk = await hsm.generate_key("P0", exportable=True)
    mac = await hsm.generate_mac(issued.tak, b"data")
    token = await hsm.encrypt_pan(PAN)
    # A chip card's ARQC, computed on the card side from clear keys (section 11).
    imk_clear = bytes.fromhex(CLEAR["imk_ac"])
    sk_ac = session_key_for_atc(imk_clear, PAN, "01", 9)
    mk_ac = derive_icc_master_key_option_a(imk_clear, PAN, "01")
    emv_data = bytes(33) + b"\x06\x01\x0a\x03\xa0\x00\x00"
    emv = {
        "imk_ac": handles["imk_ac"],
        "pan": PAN,
        "psn": "01",
        "atc": 9,
        "data": emv_data,
        "arqc": application_cryptogram(sk_ac, emv_data),
    }
    calls: dict[str, Any] = {
        "generate_key": lambda: hsm.generate_key("M3"),
        "key_check_value": lambda: hsm.key_check_value(issued.tpk),
        "key_info": lambda: hsm.key_info(issued.tak),
        "form_key_from_components": lambda: hsm.form_key_from_components(
            [CLEAR["tmk"], CLEAR["kek"]], usage="K0"
        ),
        "generate_key_components": lambda: hsm.generate_key_components("K0"),
        "import_clear_key_test_mode": lambda: hsm.import_clear_key_test_mode(
            CLEAR["kek"], usage="K0"
        ),
        "export_key": lambda: hsm.export_key(zpk, kek=handles["kek"]),
        "import_key": lambda: hsm.import_key(issued.tpk_block, kek=handles["tmk"]),
        "create_terminal_master_key": lambda: hsm.create_terminal_master_key(),
        "issue_terminal_working_keys": lambda: hsm.issue_terminal_working_keys(handles["tmk"]),
        "verify_pin": lambda: hsm.verify_pin(
            tpk=issued.tpk, pin_block=block, pan=PAN, verification=card
        ),
        "verify_pin_dukpt": lambda: hsm.verify_pin_dukpt(
            bdk=handles["bdk"], ksn=ksn, pin_block=dukpt_block, pan=PAN, verification=card
        ),
        "change_pin": lambda: hsm.change_pin(
            tpk=issued.tpk, old_pin_block=block, new_pin_block=new_block, pan=PAN, verification=card
        ),
        "translate_pin": lambda: hsm.translate_pin(
            source_key=issued.tpk, target_key=zpk, pin_block=block, pan=PAN
        ),
        "translate_pin_dukpt": lambda: hsm.translate_pin_dukpt(
            bdk=handles["bdk"], ksn=ksn, target_key=zpk, pin_block=dukpt_block, pan=PAN
        ),
        "pin_verification_data_test_mode": lambda: hsm.pin_verification_data_test_mode(
            pvk=handles["pvk2"], pan=PAN, pin=PIN, method="visa_pvv"
        ),
        "issue_pin_mailer_test_mode": lambda: hsm.issue_pin_mailer_test_mode(
            pvk=handles["pvk"], pan=PAN
        ),
        "generate_mac": lambda: hsm.generate_mac(issued.tak, b"data"),
        "verify_mac": lambda: hsm.verify_mac(issued.tak, b"data", mac),
        "generate_cvv": lambda: hsm.generate_cvv(
            cvk=handles["cvk"], pan=PAN, expiry="3012", service_code="101"
        ),
        "verify_cvv": lambda: hsm.verify_cvv(
            cvk=handles["cvk"], pan=PAN, expiry="3012", service_code="101", cvv="000"
        ),
        "verify_arqc": lambda: hsm.verify_arqc(**emv),
        "generate_arpc": lambda: hsm.generate_arpc(**emv, response_code="00"),
        "pan_lookup_hash": lambda: hsm.pan_lookup_hash(PAN),
        "encrypt_pan": lambda: hsm.encrypt_pan(PAN),
        "decrypt_pan": lambda: hsm.decrypt_pan(token),
    }
    public = {
        name
        for name, member in inspect.getmembers(SoftwareHsm)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }
    assert public == set(calls), "a public HSM method is not covered by this walk"
    secrets = {
        PIN,
        NEW_PIN,
        *CLEAR.values(),
        tpk_clear.hex().upper(),
        tak_clear.hex().upper(),
        sk_ac.hex().upper(),
        mk_ac.hex().upper(),
    }
    for name, call in calls.items():
        try:
            result = await call()
        except switch.hsm.CvvVerificationFailed as exc:  # verify_cvv with a guessed CVV
            result = exc
        text = render(result)
        leaked = {s for s in secrets | clear_key_hex(lmk, text) if s in text}
        if name in DOCUMENTED_EXCEPTIONS:
            continue
        assert not leaked, f"{name} returned clear material"
    assert isinstance(await calls["change_pin"](), PinVerificationData)


async def test_documented_exceptions_hide_in_repr(lmk: bytes) -> None:
    hsm = SoftwareHsm(lmk, test_mode=True)
    made = await hsm.create_terminal_master_key()
    assert made.components[0][0] not in repr(made)
    pvk = await hsm.import_clear_key_test_mode(CLEAR["pvk"], usage="V1")
    mailer = await hsm.issue_pin_mailer_test_mode(pvk=pvk, pan=PAN, pin_digits=12)
    assert mailer.pin not in repr(mailer)


def test_module_level_public_functions_are_listed() -> None:
    """switch.hsm exports only the safe API (primitives live in switch.hsm.primitives)."""
    functions = {n for n in switch.hsm.__all__ if inspect.isfunction(getattr(switch.hsm, n))}
    assert functions == {"ensure_lmk", "load_lmk", "open_hsm"}


def test_keys_cli_prints_no_clear_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    data_dir = str(tmp_path / "d")

    def run(*argv: str, stdin: str = "") -> str:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        assert main(["keys", *argv, "--data-dir", data_dir]) == 0
        return capsys.readouterr().out

    outputs = [run("init")]
    lmk = load_lmk(Config(data_dir=Path(data_dir)), environ={})
    outputs.append(
        run(
            "form-from-components",
            "--usage",
            "K0",
            "--json",
            stdin=f"{CLEAR['tmk']}\n{CLEAR['kek']}\n",
        )
    )
    kek = json.loads(outputs[-1])["handle"]
    outputs.append(run("generate", "--usage", "P0", "--exportable", "--json"))
    key = json.loads(outputs[-1])["handle"]
    outputs.append(run("generate", "--usage", "M3"))
    outputs.append(run("kcv", key))
    outputs.append(run("info", key, "--json"))
    outputs.append(run("export", key, "--kek", kek, "--json"))
    block = json.loads(outputs[-1])["block"]
    outputs.append(run("import", block, "--kek", kek))
    text = "\n".join(outputs).upper()
    known = set(CLEAR.values()) | clear_key_hex(lmk, text)
    assert len(known) > len(CLEAR)  # the peek found the generated keys
    assert not {s for s in known if s in text}
