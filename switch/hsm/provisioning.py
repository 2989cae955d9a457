"""Terminal master key provisioning for ``atm-switch terminals add`` (spec 7, 9).

The TMK is generated inside the HSM and shown once as two clear components
with their KCVs plus the key's KCV -- the installation ceremony, where two
custodians each key one component into the ATM's EPP. Only the LMK handle is
stored (``terminal_keys``).
"""

from __future__ import annotations

from typing import Any

from switch.db.runtime import Database
from switch.hsm.results import KeyComponents
from switch.hsm.software import SoftwareHsm
from switch.hsm.terminal_keys import store_terminal_master_key


async def provision_terminal_master_key(
    db: Database, hsm: SoftwareHsm, terminal_id: str, *, key_type: str = "tdes"
) -> KeyComponents:
    """Generate the terminal's TMK (TDES double length or AES-128) and store its handle."""
    made = await hsm.create_terminal_master_key(key_type)
    await store_terminal_master_key(
        db, terminal_id, tmk=made.handle, key_type=key_type, tmk_kcv=made.kcv
    )
    return made


def tmk_ceremony_lines(terminal_id: str, made: KeyComponents) -> list[str]:
    """Human-readable ceremony printout (the only place a TMK is shown in clear parts)."""
    lines = [f"terminal {terminal_id} master key (give each component to a different custodian):"]
    for index, (component, kcv) in enumerate(made.components, start=1):
        lines.append(f"  component {index}: {component}  kcv {kcv}")
    lines.append(f"  key check value: {made.kcv}")
    return lines


def tmk_ceremony_json(made: KeyComponents) -> dict[str, Any]:
    """The same for ``--json``: components with KCVs, and the key's KCV."""
    return {
        "tmk_components": [{"component": c, "kcv": k} for c, k in made.components],
        "tmk_kcv": made.kcv,
    }
