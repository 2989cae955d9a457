"""Backup, verify and restore with PostgreSQL's own tools (pg_dump / pg_restore from pgserver).

A backup is one tar file holding ``database.dump`` (pg_dump's custom format) and
``manifest.json``: the dump's SHA-256, the schema version, the fingerprint and KCV of the LMK the
data needs (never the LMK: the backup holds keys only as LMK-wrapped blocks), and a content
digest (row count and hash per table) computed in the very snapshot pg_dump copies: pg_dump
runs with ``--snapshot`` of a REPEATABLE READ transaction this module holds open, so the dump is
consistent under load and the digest describes exactly what was dumped. ``verify`` checks the
checksum and that pg_restore can read the archive; ``restore`` refuses a non-empty database,
refuses an LMK that does not match, restores in one transaction, then recomputes the digest and
runs the ledger's invariant check.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Final

import asyncpg

from switch.admin.lmk_split import lmk_fingerprint, lmk_kcv

DUMP_NAME: Final = "database.dump"
MANIFEST_NAME: Final = "manifest.json"
FORMAT_VERSION: Final = 1
TOOL_TIMEOUT_S: Final = 3600.0  # a large ledger may take a while; never forever
REQUIRED_TABLES: Final = ("ledger_accounts", "ledger_entries", "ledger_holds",
                          "ledger_idempotency", "cards", "terminals", "schema_migrations")


class BackupError(RuntimeError):
    """A backup could not be made, verified or restored; the message says why."""


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore shipped inside the pgserver wheel (same major as its server)."""
    import pgserver

    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
    if not path.exists():
        raise BackupError(f"{name} not found at {path}")
    return str(path)


async def _tables(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [row["tablename"] for row in rows]


async def content_digest(connection: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Per table: row count and an order-independent hash of every row's text."""
    digest = {}
    for table in await _tables(connection):
        row = await connection.fetchrow(
            f'SELECT count(*) AS n, coalesce(md5(string_agg(md5(t::text), \'\' ORDER BY'
            f' md5(t::text))), \'\') AS h FROM "{table}" t'
        )
        digest[table] = {"rows": int(row["n"]), "md5": str(row["h"])}
    return digest


async def _run_tool(*argv: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), TOOL_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        raise BackupError(f"{Path(argv[0]).name} took longer than {TOOL_TIMEOUT_S} s") from None
    if process.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {err.decode(errors='replace')[-800:]}")
    return out


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


async def create(dsn: str, target: Path, lmk: bytes) -> dict[str, Any]:
    """Dump the database consistently into ``target`` (a tar file); returns the manifest."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await connection.fetchval("SELECT pg_export_snapshot()")
            schema_version = await connection.fetchval(
                "SELECT max(version) FROM schema_migrations")
            with tempfile.TemporaryDirectory(prefix="atm-backup-") as scratch:
                dump = Path(scratch) / DUMP_NAME
                dumping = asyncio.ensure_future(_run_tool(
                    pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                    f"--snapshot={snapshot}", f"--file={dump}", f"--dbname={dsn}"))
                digest = await content_digest(connection)  # same snapshot, meanwhile
                await dumping
                manifest = {
                    "format": FORMAT_VERSION,
                    "schema_version": schema_version,
                    "dump_sha256": _sha256(dump),
                    "lmk_fingerprint": lmk_fingerprint(lmk),
                    "lmk_kcv": lmk_kcv(lmk),
                    "content": digest,
                }
                _write_archive(target, dump, manifest)
    finally:
        await connection.close()
    return manifest


def _write_archive(target: Path, dump: Path, manifest: dict[str, Any]) -> None:
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        archive.add(dump, arcname=DUMP_NAME)
    partial.chmod(0o600)
    partial.replace(target)  # a crash never leaves a half-written file under the real name


def _extract(source: Path, into: Path) -> tuple[Path, dict[str, Any]]:
    try:
        with tarfile.open(source, "r") as archive:
            names = sorted(archive.getnames())
            if names != sorted((DUMP_NAME, MANIFEST_NAME)):
                raise BackupError(f"{source} is not an atm-switch backup (members {names})")
            archive.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"cannot read {source}: {exc}") from exc
    manifest: dict[str, Any] = json.loads((into / MANIFEST_NAME).read_text())
    dump = into / DUMP_NAME
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if _sha256(dump) != manifest["dump_sha256"]:
        raise BackupError("the dump's checksum does not match its manifest (damaged or altered)")
    return dump, manifest


async def verify(source: Path) -> dict[str, Any]:
    """Checksum, pg_restore can list the archive, and the required tables are in it."""
    with tempfile.TemporaryDirectory(prefix="atm-verify-") as scratch:
        dump, manifest = _extract(source, Path(scratch))
        listing = (await _run_tool(pg_tool("pg_restore"), "--list", str(dump))).decode()
    missing = [t for t in REQUIRED_TABLES
               if f" TABLE DATA public {t} " not in listing or t not in manifest["content"]]
    if missing:
        raise BackupError(f"the backup lacks tables: {', '.join(missing)}")
    return manifest


async def restore(dsn: str, source: Path, lmk: bytes) -> dict[str, Any]:
    """Restore into an empty database, check the LMK, the content digest and the invariants."""
    with tempfile.TemporaryDirectory(prefix="atm-restore-") as scratch:
        dump, manifest = _extract(source, Path(scratch))
        if lmk_fingerprint(lmk) != manifest["lmk_fingerprint"]:
            raise BackupError("this LMK is not the one the backup's keys are wrapped under")
        connection = await asyncpg.connect(dsn)
        try:
            if await _tables(connection):
                raise BackupError("the target database is not empty; restore needs an empty one")
            await _run_tool(pg_tool("pg_restore"), "--no-owner", "--no-privileges",
                            "--exit-on-error", "--single-transaction", f"--dbname={dsn}",
                            str(dump))
            restored = await content_digest(connection)
            if restored != manifest["content"]:
                bad = sorted(t for t in set(restored) | set(manifest["content"])
                             if restored.get(t) != manifest["content"].get(t))
                raise BackupError(f"restored content differs from the backup in: {bad}")
            violations = await connection.fetch("SELECT * FROM ledger_check_invariants()")
            if violations:
                raise BackupError(f"ledger invariants fail after restore: {violations[:5]}")
        finally:
            await connection.close()
    return manifest

