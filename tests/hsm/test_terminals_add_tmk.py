"""``atm-switch terminals add`` generates the TMK: two components, each to its own file (one per
custodian; issue 11 item 3), KCVs printed, handle stored.

Real PostgreSQL (pg_dsn) and a fresh data directory (the LMK is created on first use).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from switch.cli import main
from switch.config import Config
from switch.hsm.keystore import KeyStore
from switch.hsm.lmk import load_lmk
from switch.hsm.primitives import kcv_aes, kcv_tdes, xor_bytes


def _stored(pg_dsn: str, terminal_id: str) -> asyncpg.Record:
    async def fetch() -> asyncpg.Record:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return await conn.fetchrow(
                "SELECT * FROM terminal_keys WHERE terminal_id = $1", terminal_id
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.mark.parametrize(("key_type", "kcv"), [("tdes", kcv_tdes), ("aes", kcv_aes)])
def test_terminals_add_prints_components_and_stores_handle(
    pg_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key_type: str,
    kcv: object,
) -> None:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    args = [
        "terminals",
        "add",
        "ATM00009",
        "--key-type",
        key_type,
        "--json",
        "--data-dir",
        str(tmp_path),
        "--dsn",
        pg_dsn,
    ]
    files = [str(tmp_path / "custodian1.txt"), str(tmp_path / "custodian2.txt")]
    assert main([*args[:3], "--component-files", files[0], files[0], *args[3:]]) != 0
    assert "own file" in capsys.readouterr().err  # both components to one file: refused
    assert main([*args[:3], "--component-files", *files, *args[3:]]) == 0
    printed = capsys.readouterr().out
    out = json.loads(printed)
    texts = [Path(f).read_text() for f in files]
    parts = [bytes.fromhex(t.split("component: ")[1].split()[0]) for t in texts]
    assert len(parts) == 2 and len(parts[0]) == 16
    assert all(p.hex().upper() not in printed for p in parts)  # no component on stdout
    assert parts[1].hex().upper() not in texts[0] and parts[0].hex().upper() not in texts[1]
    assert [c["kcv"] for c in out["tmk_component_files"]] == [kcv(p) for p in parts]  # type: ignore[operator]
    assert kcv(xor_bytes(*parts)) == out["tmk_kcv"]  # type: ignore[operator]
    assert all(Path(f).stat().st_mode & 0o777 == 0o600 for f in files)
    row = _stored(pg_dsn, "ATM00009")
    assert row["key_type"] == key_type and row["tmk_kcv"] == out["tmk_kcv"]
    assert all(p.hex().upper() not in str(dict(row)) for p in parts)
    lmk = load_lmk(Config(data_dir=tmp_path), environ={})
    clear = KeyStore(lmk).unwrap(row["tmk"])
    assert clear.header.key_usage == "K0" and kcv(clear.key) == out["tmk_kcv"]  # type: ignore[operator]


def test_terminals_add_text_output(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    files = [str(tmp_path / "c1"), str(tmp_path / "c2")]
    assert main(["terminals", "add", "ATM00010", "--data-dir", str(tmp_path), "--dsn", pg_dsn,
                 "--component-files", *files]) == 0
    out = capsys.readouterr().out
    assert f"component 1 written to {files[0]}" in out and "key check value" in out
    component = Path(files[1]).read_text().split("component: ")[1].split()[0]
    assert component not in out
    assert main(["terminals", "add", "ATM00010", "--data-dir", str(tmp_path), "--dsn", pg_dsn]) == 1
