"""Terminal master key provisioning for ``atm-switch terminals add`` (spec 7, 9).

The TMK is generated inside the HSM and its two clear components go to two
separate files, one per custodian (each keys one component into the ATM's EPP),
never both to one output (:mod:`switch.hsm.custody`); standard output shows only
the component KCVs and the key's KCV. Only the LMK handle is stored
(``terminal_keys``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switch.db.runtime import Database
from switch.hsm.custody import write_components
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


def write_tmk_components(
    terminal_id: str, made: KeyComponents, paths: list[Path] | None
) -> list[dict[str, str]]:
    """Each clear component to its own file (none written when ``paths`` is None)."""
    if paths is None:
        return []
    return write_components(paths, made.components, title=f"terminal {terminal_id} master key")


def tmk_ceremony_lines(
    terminal_id: str, made: KeyComponents, files: list[dict[str, str]]
) -> list[str]:
    """What standard output shows: where each component went and the KCVs, no component."""
    lines = [f"terminal {terminal_id} master key, key check value {made.kcv}"]
    for index, written in enumerate(files, start=1):
        lines.append(f"  component {index} written to {written['file']} (kcv {written['kcv']})")
    if not files:
        lines.append("  components not written (no --component-files): load the TMK another way")
    return lines


def tmk_ceremony_json(made: KeyComponents, files: list[dict[str, str]]) -> dict[str, Any]:
    """The same for ``--json``: component files with KCVs, and the key's KCV."""
    return {"tmk_component_files": files, "tmk_kcv": made.kcv}
