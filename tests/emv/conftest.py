"""Fixtures for the chip tests: a real SoftwareHsm (test mode) with a fresh LMK per test."""

from __future__ import annotations

import secrets

import pytest

from switch.hsm import SoftwareHsm


@pytest.fixture
def hsm() -> SoftwareHsm:
    return SoftwareHsm(secrets.token_bytes(32), test_mode=True)
