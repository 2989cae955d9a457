"""One loader for the known-answer files in tests/hsm/vectors/ (each entry names its source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTOR_DIR = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    with (VECTOR_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def cases(name: str, section: str) -> list[Any]:
    """pytest params for one section of a vector file, each id'd by its source."""
    entries = load(name)[section]
    return [pytest.param(entry, id=f"{section}-{i}") for i, entry in enumerate(entries)]
