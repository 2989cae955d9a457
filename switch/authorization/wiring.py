"""Building the parts authorization needs outside the server (CLI commands, tests)."""

from __future__ import annotations

from ledger_adapter import Ledger
from switch.config import Config
from switch.db.runtime import Database
from switch.hsm import SoftwareHsm, load_lmk


def open_ledger(db: Database) -> Ledger:
    """The PostgreSQL ledger over ``db``."""
    from ledger_adapter.postgres import PostgresLedger

    return PostgresLedger(db)


def open_hsm_for(config: Config, *, test_mode: bool | None = None) -> SoftwareHsm:
    """The software HSM over the data directory's LMK; ``test_mode`` overrides the config."""
    return SoftwareHsm(
        load_lmk(config),
        test_mode=config.hsm.test_mode if test_mode is None else test_mode,
        allow_weaker_pin_format=config.hsm.allow_weaker_pin_format,
    )
