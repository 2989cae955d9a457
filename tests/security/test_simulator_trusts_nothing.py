"""Spec 10 / issue 11 item 7: the reference ATM refuses a ``0210 00`` whose MAC is missing or
wrong: nothing is dispensed, the terminal reverses with reason 68 (spec 5.4: no valid answer)
and the switch's hold is released. The real simulator (emulated devices on ptys) plays against
the real switch and PostgreSQL; a proxy on the real wire strips or corrupts the 0210's MAC."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.protocol.message import decode_message
from terminals.hostlink.fault_proxy import _tamper_mac
from tests.sim.conftest import SimSwitch, scenario_document, switch  # noqa: F401 (fixture)
from tests.sim.test_e2e import play, session

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")


@pytest.mark.parametrize("fault", ["host.mac_stripped", "host.mac_corrupted"])
async def test_an_approval_without_a_valid_mac_dispenses_nothing(
    switch: SimSwitch, tmp_path: Path, fault: str  # noqa: F811
) -> None:
    before = await switch.balance()
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 30_000}),
        host_faults={fault: {"at": [1]}},
        terminal={"response_timeout_s": 1.0}))
    [record] = result["transactions"]
    assert result["faults_fired"] == [f"{fault}#1"]
    assert record["outcome"] == "no_response" and record["reversal_reason"] == "68"
    assert result["cash_paid_out"] == 0 and result["advices_pending"] == 0
    assert await switch.balance() == before  # the switch approved and held; 0420 released it


def test_the_tampering_is_real() -> None:
    # Goal: the proxy's faults really remove or change the MAC and nothing else.
    from switch.protocol.message import encode_message

    fields = {"3": "011000", "11": "000001", "39": "00", "41": "ATM00001",
              "64": "0123456789ABCDEF"}
    frame = encode_message("0210", fields)
    stripped = decode_message(_tamper_mac(frame, strip=True))
    corrupted = decode_message(_tamper_mac(frame, strip=False))
    assert stripped.mac is None and stripped.response_code == "00"
    assert corrupted.mac == "0123456789ABCDE0" and corrupted.fields["41"] == "ATM00001"
