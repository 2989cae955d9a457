"""Handing clear key components to their custodians: one component per file (PCI PIN).

Why: dual control means no single person (and no single output) ever holds a whole
key. ``keys generate --component-files`` and ``terminals add --component-files``
write each clear component, with its KCV, to its own new file (mode 0600, never
overwriting anything, so not a terminal or ``/dev/stdout`` either); standard output
shows only the paths and KCVs. The files are for the custodians to take away (print
them in a PIN-mailer style envelope, then delete them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from switch.hsm.errors import KeyMaterialError

COMPONENT_FILE_MODE: Final = 0o600


def check_component_paths(paths: Sequence[str], count: int) -> list[Path]:
    """``count`` distinct paths of files that do not exist yet, or KeyMaterialError."""
    if len(paths) != count:
        raise KeyMaterialError(f"give exactly {count} component files, one per custodian")
    given = [Path(p).expanduser().absolute() for p in paths]
    if len({path.parent.resolve() / path.name for path in given}) != len(given):
        raise KeyMaterialError("each component goes to its own file (the paths repeat)")
    for path in given:
        if path.exists() or path.is_symlink():  # also /dev/stdout, /dev/tty: never an output
            raise KeyMaterialError(f"{path} exists; component files are never overwritten")
        if not path.parent.is_dir():
            raise KeyMaterialError(f"no directory for the component file {path}")
    return given


def write_components(
    paths: Sequence[Path], components: Sequence[tuple[str, str]], *, title: str
) -> list[dict[str, str]]:
    """Write component ``i`` (hex, KCV) to ``paths[i]``; return ``[{"file", "kcv"}]``."""
    written = []
    for index, (path, (component, kcv)) in enumerate(zip(paths, components, strict=True), 1):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        descriptor = os.open(path, flags, COMPONENT_FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(
                f"{title}\ncomponent {index} of {len(components)}\n"
                f"component: {component}\nkcv: {kcv}\n"
            )
            handle.flush()
            os.fsync(handle.fileno())
        written.append({"file": str(path), "kcv": kcv})
    return written
