"""``atm-switch backup create|verify|restore FILE`` and ``backup lmk-export``.

The database goes into the backup (pg_dump); the LMK never does. ``lmk-export`` splits the LMK
into two or three components, each written to its own new file for one custodian (standard
output shows only paths and KCVs); ``restore --lmk-component-file F`` (once per custodian) or
``--lmk-components`` (``HEX KCV`` lines on stdin) joins them, checking every KCV, and installs
the LMK in the data directory when it has none.
Without it, restore uses the LMK the data directory (or environment) already has.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from switch.commands.common import CliError, add_dsn_flag, add_json_flag, print_json
from switch.config import Config


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    backup = subparsers.add_parser("backup", help="backup and restore (the LMK stays out)",
                                   parents=[common])
    sub = backup.add_subparsers(dest="backup_command", metavar="ACTION")
    sub.required = True
    for action, handler, text in (
        ("create", _create, "dump the database consistently into FILE"),
        ("verify", _verify, "check FILE's checksum and that pg_restore can read it"),
        ("restore", _restore, "restore FILE into an empty database"),
    ):
        parser = sub.add_parser(action, help=text, parents=[common])
        parser.add_argument("file", type=Path)
        add_dsn_flag(parser)
        add_json_flag(parser)
        parser.set_defaults(handler=handler)
        if action == "restore":
            parser.add_argument("--lmk-components", action="store_true",
                                help="read the LMK as 'HEX KCV' component lines from stdin")
            parser.add_argument("--lmk-component-file", action="append", default=None,
                                metavar="FILE", help="a custodian's component file from "
                                "lmk-export (give each custodian's file once)")
    export = sub.add_parser(
        "lmk-export", parents=[common],
        help="split the LMK into components, each written to its own custodian's file")
    export.add_argument("--component-files", nargs="+", required=True, metavar="FILE",
                        help="2 or 3 new files, one per custodian (never a terminal or stdout)")
    add_json_flag(export)
    export.set_defaults(handler=_lmk_export)


def _lmk(config: Config) -> bytes:
    from switch.hsm import HsmError
    from switch.hsm.lmk import load_lmk

    try:
        return load_lmk(config)
    except HsmError as exc:
        raise CliError(str(exc)) from exc


def _with_dsn(config: Config, work: Any) -> Any:
    from switch.admin.backup import BackupError
    from switch.db.embedded import EmbeddedDatabaseError, database_dsn

    try:
        with database_dsn(config) as dsn:
            return asyncio.run(work(dsn))
    except BackupError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    except (EmbeddedDatabaseError, OSError) as exc:
        raise CliError(str(exc)) from exc


def _report(args: argparse.Namespace, manifest: dict[str, Any], text: str) -> int:
    if args.json:
        print_json({k: v for k, v in manifest.items() if k != "content"})
    else:
        tables = manifest["content"]
        print(f"{text}: schema {manifest['schema_version']}, {len(tables)} tables, "
              f"{sum(t['rows'] for t in tables.values())} rows, LMK KCV {manifest['lmk_kcv']}")
    return 0


def _create(args: argparse.Namespace, config: Config) -> int:
    from switch.admin import backup

    lmk = _lmk(config)
    manifest = _with_dsn(config, lambda dsn: backup.create(dsn, args.file, lmk))
    return _report(args, manifest, f"backup {args.file} written")


def _verify(args: argparse.Namespace, config: Config) -> int:
    from switch.admin import backup

    try:
        manifest = asyncio.run(backup.verify(args.file))
    except backup.BackupError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    return _report(args, manifest, f"backup {args.file} verified")


def _read_components() -> list[tuple[str, str]]:
    pairs = []
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if len(words) != 2:
            raise CliError("each LMK component line is 'HEX KCV'")
        pairs.append((words[0], words[1]))
    return pairs


def _install_lmk(config: Config, lmk: bytes) -> None:
    """Write the joined LMK to the data directory (0600), unless one is already there."""
    from switch.hsm.lmk import lmk_path

    path = lmk_path(config)
    if path.exists():
        if _lmk(config) != lmk:
            raise CliError(f"{path} holds another LMK; refusing to replace it")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(lmk.hex().upper() + "\n")


def _restore(args: argparse.Namespace, config: Config) -> int:
    from switch.admin import backup
    from switch.admin.lmk_split import LmkSplitError, join

    from_custodians = bool(args.lmk_components or args.lmk_component_file)
    if from_custodians:
        try:
            pairs = (_read_component_files(args.lmk_component_file)
                     if args.lmk_component_file else _read_components())
            lmk = join(pairs)
        except LmkSplitError as exc:
            raise CliError(str(exc)) from exc
    else:
        lmk = _lmk(config)
    manifest = _with_dsn(config, lambda dsn: backup.restore(dsn, args.file, lmk))
    if from_custodians:
        _install_lmk(config, lmk)
    return _report(args, manifest, f"backup {args.file} restored")


def _lmk_export(args: argparse.Namespace, config: Config) -> int:
    """Issue 18: each component to its own new file, as TMK components are; standard output
    shows only the paths and check values (docs/security.md, the LMK ceremony)."""
    from switch.admin.lmk_split import COMPONENTS_MAX, COMPONENTS_MIN, lmk_kcv, split
    from switch.hsm import HsmError
    from switch.hsm.custody import check_component_paths, write_components

    lmk = _lmk(config)  # an uninitialised data directory says so first
    count = len(args.component_files)
    if not COMPONENTS_MIN <= count <= COMPONENTS_MAX:
        raise CliError(f"give {COMPONENTS_MIN} or {COMPONENTS_MAX} component files, "
                       "one per custodian")
    try:
        paths = check_component_paths(args.component_files, count)
    except HsmError as exc:
        raise CliError(str(exc)) from exc
    components = [(part.value_hex, part.kcv) for part in split(lmk, count)]
    files = write_components(paths, components, title="atm-switch LMK")
    if args.json:
        print_json({"lmk_kcv": lmk_kcv(lmk), "component_files": files})
        return 0
    print(f"LMK check value {lmk_kcv(lmk)}; {count} components, one per custodian:")
    for index, written in enumerate(files, start=1):
        print(f"  component {index} written to {written['file']} (kcv {written['kcv']})")
    return 0


def _read_component_files(paths: list[str]) -> list[tuple[str, str]]:
    """``(HEX, KCV)`` from each custodian's file as lmk-export wrote it."""
    from switch.admin.lmk_split import LmkSplitError

    pairs = []
    for path in paths:
        try:
            fields = dict(line.split(": ", 1) for line in Path(path).read_text("ascii")
                          .splitlines() if ": " in line)
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the component file {path}: {exc}") from exc
        if "component" not in fields or "kcv" not in fields:
            raise LmkSplitError(f"{path} is not an LMK component file")
        pairs.append((fields["component"], fields["kcv"]))
    return pairs
