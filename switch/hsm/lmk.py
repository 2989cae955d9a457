"""The Local Master Key (LMK): an AES-256 key that wraps every other key.

It lives in ``<data_dir>/lmk.key`` (64 hex digits, file mode 0600) or, when the
environment variable named by ``config.hsm.lmk_env`` is set, in that variable.
Losing it makes every stored key unusable; ``keys init`` refuses to overwrite.

Custody (issue 11 item 4): a file that is group- or world-accessible, or owned by
another user, is refused when loaded; a new file is fsynced (and its directory) before
it is used, so a crash cannot leave keys wrapped under an LMK that was never on disk.
An LMK read from the environment is removed from ``os.environ`` at once (kept in this
process only), so no child process (PostgreSQL, workers, tools) inherits it.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from switch.config import Config
from switch.hsm.errors import LmkError

lmk_bytes = 32
lmk_file_name = "lmk.key"
lmk_file_mode = 0o600
# LMKs taken out of os.environ, by variable name (this process only).
_taken_from_environment: dict[str, str] = {}


def lmk_path(config: Config) -> Path:
    return Path(config.data_dir) / lmk_file_name


def parse_lmk(text: str, where: str) -> bytes:
    """Decode the LMK hex text; a clear message says what is wrong (never the value)."""
    cleaned = text.strip()
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise LmkError(f"LMK in {where} is not hexadecimal") from None
    if len(value) != lmk_bytes:
        raise LmkError(
            f"LMK in {where} must be {lmk_bytes * 2} hex digits (AES-256), found {len(cleaned)}"
        )
    return value


def _from_environment(config: Config, environ: Mapping[str, str]) -> bytes | None:
    name = config.hsm.lmk_env
    if not name:
        return None
    if environ is os.environ and os.environ.get(name):
        _taken_from_environment[name] = os.environ.pop(name)  # children never see it
    value = _taken_from_environment.get(name) if environ is os.environ else environ.get(name)
    if value:
        return parse_lmk(value, f"environment variable {name}")
    return None


def withhold_from_children(config: Config) -> None:
    """Take an LMK out of ``os.environ`` now, before any child process (the embedded
    PostgreSQL) is started; this process still reads it through :func:`load_lmk`."""
    name = config.hsm.lmk_env
    if name and os.environ.get(name):
        _taken_from_environment[name] = os.environ.pop(name)


def check_lmk_file(path: Path) -> None:
    """Refuse an LMK file others could read or replace (mode beyond 0600, or not ours)."""
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LmkError(
            f"LMK file {path} is accessible to group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): run 'chmod 600 {path}'"
        )
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise LmkError(f"LMK file {path} is owned by uid {info.st_uid}, not by this user")


def load_lmk(config: Config, environ: Mapping[str, str] | None = None) -> bytes:
    """Read the LMK (environment first, then the data directory) or raise ``LmkError``."""
    env = os.environ if environ is None else environ
    from_env = _from_environment(config, env)
    if from_env is not None:
        return from_env
    path = lmk_path(config)
    try:
        check_lmk_file(path)
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise LmkError(
            f"no LMK at {path}: run 'atm-switch keys init' or 'atm-switch db init' "
            f"(or set {config.hsm.lmk_env})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LmkError(f"cannot read LMK at {path}: {exc}") from None
    return parse_lmk(text, str(path))


def create_lmk(config: Config) -> Path:
    """Write a fresh LMK with mode 0600; refuses to overwrite an existing one."""
    path = lmk_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        descriptor = os.open(path, flags, lmk_file_mode)
    except FileExistsError:
        raise LmkError(f"an LMK already exists at {path}; refusing to overwrite it") from None
    except OSError as exc:
        raise LmkError(f"cannot create LMK at {path}: {exc}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_bytes(lmk_bytes).hex().upper() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, lmk_file_mode)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the new directory entry too
    finally:
        os.close(directory)
    return path


def ensure_lmk(config: Config, environ: Mapping[str, str] | None = None) -> bool:
    """Make sure an LMK exists; return True when one was created now (spec 9, db init)."""
    env = os.environ if environ is None else environ
    if _from_environment(config, env) is not None:
        return False
    path = lmk_path(config)
    if path.exists():
        load_lmk(config, env)  # a malformed file is reported now, not at first use
        return False
    try:
        create_lmk(config)
    except LmkError:
        if path.exists():  # another process created it first
            return False
        raise
    return True


def lmk_file_is_private(config: Config) -> bool:
    """True when the LMK file is readable by its owner only."""
    mode = lmk_path(config).stat().st_mode
    return not mode & (stat.S_IRWXG | stat.S_IRWXO)
