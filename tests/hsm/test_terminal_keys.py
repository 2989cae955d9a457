"""terminal_keys table (migration 0201) on a real PostgreSQL: handles only, cascade on delete."""

from __future__ import annotations

from pathlib import Path

from switch.db.runtime import Database
from switch.hsm import SoftwareHsm
from switch.hsm.terminal_keys import (
    load_terminal_keys,
    store_terminal_master_key,
    store_working_keys,
)


async def test_store_and_load_terminal_keys(db: Database, hsm: SoftwareHsm) -> None:
    await db.execute("INSERT INTO terminals (terminal_id) VALUES ('ATM00001')")
    assert await load_terminal_keys(db, "ATM00001") is None
    created = await hsm.create_terminal_master_key("tdes")
    await store_terminal_master_key(
        db, "ATM00001", tmk=created.handle, key_type="tdes", tmk_kcv=created.kcv
    )
    issued = await hsm.issue_terminal_working_keys(created.handle)
    assert await store_working_keys(db, "ATM00001", tpk=issued.tpk, tak=issued.tak)
    keys = await load_terminal_keys(db, "ATM00001")
    assert keys is not None and (keys.tpk, keys.tak, keys.tmk_kcv) == (
        issued.tpk,
        issued.tak,
        created.kcv,
    )
    stored = await db.fetchrow("SELECT * FROM terminal_keys")
    for component, _ in created.components:
        assert component not in str(dict(stored))
    # A new TMK invalidates the working keys (they were wrapped under the old one).
    await store_terminal_master_key(
        db, "ATM00001", tmk=created.handle, key_type="tdes", tmk_kcv=created.kcv
    )
    keys = await load_terminal_keys(db, "ATM00001")
    assert keys is not None and keys.tpk is None
    await db.execute("DELETE FROM terminals WHERE terminal_id = 'ATM00001'")
    assert await load_terminal_keys(db, "ATM00001") is None
    assert not await store_working_keys(db, "ATM00001", tpk=issued.tpk, tak=issued.tak)


async def test_provision_terminal_master_key(
    db: Database, hsm: SoftwareHsm, tmp_path: Path
) -> None:
    from switch.hsm.primitives import kcv_aes, xor_bytes
    from switch.hsm.provisioning import (
        provision_terminal_master_key,
        tmk_ceremony_json,
        tmk_ceremony_lines,
        write_tmk_components,
    )

    await db.execute("INSERT INTO terminals (terminal_id, key_type) VALUES ('ATM00002', 'aes')")
    made = await provision_terminal_master_key(db, hsm, "ATM00002", key_type="aes")
    keys = await load_terminal_keys(db, "ATM00002")
    assert keys is not None and keys.tmk == made.handle and keys.key_type == "aes"
    first, second = (bytes.fromhex(c) for c, _ in made.components)
    assert kcv_aes(xor_bytes(first, second)) == made.kcv == keys.tmk_kcv
    # Issue 11 item 3: each component to its own file, none on the printed output.
    files = write_tmk_components("ATM00002", made, [tmp_path / "c1", tmp_path / "c2"])
    printed = "\n".join(tmk_ceremony_lines("ATM00002", made, files))
    assert made.kcv in printed and all(c not in printed for c, _ in made.components)
    assert made.components[0][0] in (tmp_path / "c1").read_text()
    assert made.components[1][0] not in (tmp_path / "c1").read_text()
    assert made.components[1][0] in (tmp_path / "c2").read_text()
    assert (tmp_path / "c2").stat().st_mode & 0o777 == 0o600
    assert tmk_ceremony_json(made, files)["tmk_kcv"] == made.kcv
