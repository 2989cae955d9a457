"""Fixtures for the HSM tests: a fresh in-memory LMK and SoftwareHsm per test."""

from __future__ import annotations

import secrets

import pytest

from switch.hsm import SoftwareHsm


@pytest.fixture
def lmk() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def hsm(lmk: bytes) -> SoftwareHsm:
    return SoftwareHsm(lmk, test_mode=True)


@pytest.fixture
def prod_hsm(lmk: bytes) -> SoftwareHsm:
    """Same LMK, test mode off (as in production)."""
    return SoftwareHsm(lmk, test_mode=False)
