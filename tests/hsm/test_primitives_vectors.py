"""Known-answer tests: every primitive against published vectors (tests/hsm/vectors/*.json).

Each vector names its source; a failure here means the primitive disagrees with
the standard's own example, not with our other code.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from switch.hsm.primitives import (
    aes_cmac,
    cvv,
    dukpt_aes,
    dukpt_tdes,
    kcv_aes,
    kcv_tdes,
    pin_blocks,
    retail_mac,
    tr31_unwrap,
)
from switch.hsm.primitives.des import tdes_ecb_decrypt, tdes_ecb_encrypt
from switch.hsm.primitives.pin_verification import (
    ibm3624_offset,
    ibm3624_pin_from_offset,
    visa_pvv,
)
from tests.hsm.vector_files import cases, load

h = bytes.fromhex


@pytest.fixture(autouse=True)
def _no_deprecation_warnings() -> Any:
    """Our primitives must never hit cryptography's two-key TDES deprecation path."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("v", cases("mac", "retail_mac"))
def test_retail_mac(v: dict[str, str]) -> None:
    assert retail_mac(h(v["key"]), v["data_ascii"].encode()).hex().upper() == v["mac"]


@pytest.mark.parametrize("v", cases("mac", "aes_cmac"))
def test_aes_cmac(v: dict[str, str]) -> None:
    assert aes_cmac(h(v["key"]), h(v["data"])).hex().upper() == v["mac"]


@pytest.mark.parametrize("v", cases("kcv", "tdes"))
def test_kcv_tdes(v: dict[str, str]) -> None:
    assert kcv_tdes(h(v["key"])) == v["kcv"]


@pytest.mark.parametrize("v", cases("kcv", "aes_cmac"))
def test_kcv_aes(v: dict[str, str]) -> None:
    assert kcv_aes(h(v["key"])) == v["kcv"]


@pytest.mark.parametrize("v", cases("cvv", "cvv"))
def test_cvv(v: dict[str, str]) -> None:
    assert cvv(h(v["cvk"]), v["pan"], v["expiry"], v["service_code"]) == v["cvv"]


@pytest.mark.parametrize("v", cases("pin_blocks", "format0"))
def test_pin_block_format0(v: dict[str, str]) -> None:
    block = pin_blocks.pin_block_format0(v["pin"], v["pan"])
    assert block.hex().upper() == v["clear_block"]
    assert pin_blocks.decode_pin_block_format0(block, v["pan"]) == v["pin"]


@pytest.mark.parametrize("v", cases("pin_blocks", "format1"))
def test_pin_block_format1(v: dict[str, str]) -> None:
    block = pin_blocks.pin_block_format1(v["pin"], fill=v["fill"])
    assert block.hex().upper() == v["clear_block"]
    assert pin_blocks.decode_pin_block_format1(block) == v["pin"]


@pytest.mark.parametrize("v", cases("pin_blocks", "format3"))
def test_pin_block_format3(v: dict[str, str]) -> None:
    block = pin_blocks.pin_block_format3(v["pin"], v["pan"], fill=v["fill"])
    assert block.hex().upper() == v["clear_block"]
    assert pin_blocks.decode_pin_block_format3(block, v["pan"]) == v["pin"]


@pytest.mark.parametrize("v", cases("pin_blocks", "format4"))
def test_pin_block_format4(v: dict[str, str]) -> None:
    block = pin_blocks.encipher_format4(h(v["key"]), v["pin"], v["pan"], h(v["random"]))
    assert block.hex().upper() == v["block"]
    assert pin_blocks.decipher_format4(h(v["key"]), block, v["pan"]) == v["pin"]


@pytest.mark.parametrize("v", cases("pin_blocks", "format4_fields"))
def test_pin_block_format4_fields(v: dict[str, str]) -> None:
    assert pin_blocks.pin_field_format4(v["pin"], h(v["random"])).hex().upper() == v["pin_field"]
    assert pin_blocks.pan_field_format4(v["pan"]).hex().upper() == v["pan_field"]


@pytest.mark.parametrize("v", cases("pin_verification", "ibm3624"))
def test_ibm3624(v: dict[str, str]) -> None:
    pvk = h(v["pvk"])
    assert ibm3624_offset(pvk, v["pin"], v["validation_data"], v["table"]) == v["offset"]
    assert ibm3624_pin_from_offset(pvk, v["offset"], v["validation_data"], v["table"]) == v["pin"]


@pytest.mark.parametrize("v", cases("pin_verification", "visa_pvv"))
def test_visa_pvv(v: dict[str, str]) -> None:
    assert visa_pvv(h(v["pvk"]), v["pan"], v["pin"], v["pvki"]) == v["pvv"]


@pytest.mark.parametrize("v", cases("tr31", "unwrap"))
def test_tr31_unwrap(v: dict[str, Any]) -> None:
    header, key = tr31_unwrap(h(v["kbpk"]), v["block"])
    assert key.hex().upper() == v["key"]
    assert (header.key_usage, header.algorithm, header.mode_of_use) == (
        v["usage"],
        v["algorithm"],
        v["mode_of_use"],
    )
    assert (header.key_version, header.exportability) == (v["key_version"], v["exportability"])
    assert dict(header.optional_blocks) == v["optional_blocks"]


def _tdes_dukpt_cases() -> list[Any]:
    data = load("dukpt_tdes")
    return [pytest.param(data, t, id=t["ksn"]) for t in data["transactions"]]


def test_tdes_dukpt_ipek() -> None:
    data = load("dukpt_tdes")
    assert (
        dukpt_tdes.derive_ipek(h(data["bdk"]), h(data["initial_ksn"])).hex().upper() == data["ipek"]
    )


@pytest.mark.parametrize(("data", "t"), _tdes_dukpt_cases())
def test_tdes_dukpt_transaction(data: dict[str, Any], t: dict[str, str]) -> None:
    bdk, ksn = h(data["bdk"]), h(t["ksn"])
    key = dukpt_tdes.derive_transaction_key(dukpt_tdes.derive_ipek(bdk, ksn), ksn)
    assert key.hex().upper() == t["transaction_key"]
    pin_key = dukpt_tdes.derive_pin_key(bdk, ksn)
    encrypted = tdes_ecb_encrypt(pin_key, h(data["clear_pin_block"]))
    assert encrypted.hex().upper() == t["encrypted_pin_block"]
    assert tdes_ecb_decrypt(pin_key, encrypted).hex().upper() == data["clear_pin_block"]


@pytest.mark.parametrize("v", cases("dukpt_aes", "initial_keys"))
def test_aes_dukpt_initial_key(v: dict[str, str]) -> None:
    ikid = h(load("dukpt_aes")["initial_key_id"])
    assert dukpt_aes.derive_initial_key(h(v["bdk"]), ikid).hex().upper() == v["ik"]


@pytest.mark.parametrize("v", cases("dukpt_aes", "aes128_transaction_keys"))
def test_aes_dukpt_transaction_key(v: dict[str, str]) -> None:
    data = load("dukpt_aes")
    ik = h(data["initial_keys"][0]["ik"])
    assert dukpt_aes.derive_transaction_key(ik, h(v["ksn"])).hex().upper() == v["key"]
