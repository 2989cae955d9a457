"""``atm-switch keys``: LMK creation and key management through the software HSM.

Keys are shown only as handles (TR-31 blocks under the LMK), KCVs and TR-31
blocks under a KEK. The one exception is ``keys generate --component-files F1 F2
[F3]``, the key ceremony for a key-encryption key (K0, e.g. a TMK/ZMK), which
writes each clear component with its KCV to its own new file, one per custodian
(never two to one output: :mod:`switch.hsm.custody`). Keys are non-exportable
unless ``--exportable`` is given. Clear components for ``form-from-components``
are read from standard input, never from the command line (where ``ps`` and shell
history would keep them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from switch.commands.common import CliError, add_json_flag, print_json
from switch.config import Config
from switch.hsm import HsmError, SoftwareHsm, open_hsm
from switch.hsm.custody import check_component_paths, write_components
from switch.hsm.lmk import create_lmk

T = TypeVar("T")
ceremony_usages = ("K0",)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    keys = subparsers.add_parser(
        "keys", help="LMK and key management (software HSM)", parents=[common]
    )
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True

    init = sub.add_parser(
        "init", help="create the LMK in the data directory (never overwrites)", parents=[common]
    )
    add_json_flag(init)
    init.set_defaults(handler=_init)

    generate = sub.add_parser(
        "generate", help="generate a key; prints its handle and KCV", parents=[common]
    )
    _add_key_attributes(generate)
    generate.add_argument("--length", type=int, default=16, help="key length in bytes (16)")
    generate.add_argument(
        "--component-files",
        nargs="+",
        metavar="FILE",
        default=None,
        help="K0 only: write the key as 2 or 3 clear components, each to its own new file "
        "(one per custodian)",
    )
    generate.add_argument(
        "--exportable",
        action="store_true",
        help="the key may be exported under a KEK (default: it never leaves the HSM)",
    )
    add_json_flag(generate)
    generate.set_defaults(handler=_generate)

    form = sub.add_parser(
        "form-from-components",
        parents=[common],
        help="form a key from 2-3 clear components read from stdin, one per line as 'HEX [KCV]'",
    )
    _add_key_attributes(form)
    add_json_flag(form)
    form.set_defaults(handler=_form)

    for name, help_text, handler in (
        ("kcv", "print a key's check value", _kcv),
        ("info", "print a key's attributes and KCV", _info),
    ):
        parser = sub.add_parser(name, help=help_text, parents=[common])
        parser.add_argument("handle", help="key handle (TR-31 block under the LMK)")
        add_json_flag(parser)
        parser.set_defaults(handler=handler)

    export = sub.add_parser(
        "export", help="export a key as a TR-31 block under a KEK", parents=[common]
    )
    export.add_argument("handle")
    export.add_argument("--kek", required=True, help="handle of the K0 key-encryption key")
    export.add_argument("--mode-of-use", default=None, help="narrow the mode of use (e.g. E)")
    add_json_flag(export)
    export.set_defaults(handler=_export)

    imp = sub.add_parser(
        "import", help="import a TR-31 block wrapped under a KEK", parents=[common]
    )
    imp.add_argument("block")
    imp.add_argument("--kek", required=True, help="handle of the K0 key-encryption key")
    add_json_flag(imp)
    imp.set_defaults(handler=_import)


def _add_key_attributes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--usage", required=True, help="TR-31 key usage: P0, M3, M6, K0, V1, V2, C0, B0, D0, E0"
    )
    parser.add_argument(
        "--algorithm", choices=("T", "A"), default="T", help="T = TDES (default), A = AES"
    )


def _run(config: Config, work: Callable[[SoftwareHsm], Awaitable[T]]) -> T:
    """Open the HSM for this configuration and run one async operation; HSM errors -> CliError."""
    try:
        hsm = open_hsm(config)
        return trio.run(work, hsm)
    except HsmError as exc:
        raise CliError(str(exc)) from exc


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> int:
    if args.json:
        print_json(data)
    else:
        for line in lines:
            print(line)
    return 0


def _init(args: argparse.Namespace, config: Config) -> int:
    try:
        path = create_lmk(config)
    except HsmError as exc:
        raise CliError(str(exc)) from exc
    return _emit(args, {"lmk_created": True, "path": str(path)}, [f"created LMK at {path}"])


def _generate(args: argparse.Namespace, config: Config) -> int:
    files = args.component_files
    if files is not None and args.usage not in ceremony_usages:
        raise CliError("--component-files is allowed only for key-encryption keys (usage K0)")
    try:
        paths = None if files is None else check_component_paths(files, min(max(len(files), 2), 3))
    except HsmError as exc:
        raise CliError(str(exc)) from exc

    async def work(hsm: SoftwareHsm) -> dict[str, Any]:
        if paths is not None:
            made = await hsm.generate_key_components(
                args.usage,
                algorithm=args.algorithm,
                count=len(paths),
                length_bytes=args.length,
                exportable=args.exportable,
            )
            title = f"{args.usage} key, kcv {made.kcv}"
            return {
                "handle": made.handle,
                "kcv": made.kcv,
                "component_files": write_components(paths, made.components, title=title),
            }
        handle = await hsm.generate_key(
            args.usage,
            algorithm=args.algorithm,
            length_bytes=args.length,
            exportable=args.exportable,
        )
        return {"handle": handle, "kcv": await hsm.key_check_value(handle)}

    data = _run(config, work)
    lines = [f"handle: {data['handle']}", f"kcv: {data['kcv']}"]
    for index, part in enumerate(data.get("component_files", []), start=1):
        lines.append(f"component {index} written to {part['file']} (kcv {part['kcv']})")
    return _emit(args, data, lines)


def _read_components() -> tuple[list[str], list[str] | None]:
    rows = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
    if any(len(row) not in (1, 2) for row in rows):
        raise CliError("each component line is 'HEX' or 'HEX KCV'")
    components = [row[0] for row in rows]
    kcvs = [row[1] for row in rows if len(row) == 2]
    if kcvs and len(kcvs) != len(rows):
        raise CliError("give a KCV for every component or for none")
    return components, kcvs or None


def _form(args: argparse.Namespace, config: Config) -> int:
    components, kcvs = _read_components()

    async def work(hsm: SoftwareHsm) -> dict[str, Any]:
        handle = await hsm.form_key_from_components(
            components, usage=args.usage, algorithm=args.algorithm, component_kcvs=kcvs
        )
        return {"handle": handle, "kcv": await hsm.key_check_value(handle)}

    data = _run(config, work)
    return _emit(args, data, [f"handle: {data['handle']}", f"kcv: {data['kcv']}"])


def _kcv(args: argparse.Namespace, config: Config) -> int:
    async def work(hsm: SoftwareHsm) -> str:
        return await hsm.key_check_value(args.handle)

    kcv = _run(config, work)
    return _emit(args, {"kcv": kcv}, [kcv])


def _info(args: argparse.Namespace, config: Config) -> int:
    async def work(hsm: SoftwareHsm) -> dict[str, Any]:
        info = await hsm.key_info(args.handle)
        return {
            "usage": info.usage,
            "algorithm": info.algorithm,
            "mode_of_use": info.mode_of_use,
            "exportability": info.exportability,
            "length_bytes": info.length_bytes,
            "kcv": info.kcv,
        }

    data = _run(config, work)
    return _emit(args, data, [f"{key}: {value}" for key, value in data.items()])


def _export(args: argparse.Namespace, config: Config) -> int:
    async def work(hsm: SoftwareHsm) -> dict[str, Any]:
        block = await hsm.export_key(args.handle, kek=args.kek, mode_of_use=args.mode_of_use)
        return {"block": block, "kcv": await hsm.key_check_value(args.handle)}

    data = _run(config, work)
    return _emit(args, data, [f"block: {data['block']}", f"kcv: {data['kcv']}"])


def _import(args: argparse.Namespace, config: Config) -> int:
    async def work(hsm: SoftwareHsm) -> dict[str, Any]:
        handle = await hsm.import_key(args.block, kek=args.kek)
        return {"handle": handle, "kcv": await hsm.key_check_value(handle)}

    data = _run(config, work)
    return _emit(args, data, [f"handle: {data['handle']}", f"kcv: {data['kcv']}"])
