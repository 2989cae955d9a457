"""The short fuzz pass that CI runs (derandomized by the CI hypothesis profile): every seed of
the corpus decodes cleanly, and random and mutated inputs raise only each decoder's typed
errors, within the hang limit. ``python -m tests.fuzz --seconds N`` is the long run."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.engine import Finding, check_one, mutate, seeds
from tests.fuzz.targets import TARGETS

NAMES = sorted(TARGETS)


@pytest.mark.parametrize("name", NAMES)
def test_the_seed_corpus_is_valid_input(name: str) -> None:
    # Goal: the corpus holds real, accepted inputs (mutations start from valid shapes).
    corpus = seeds(name)
    assert corpus != [b""], f"no seeds for {name}: run python -m tests.fuzz.make_corpus"
    for seed in corpus:
        assert check_one(name, TARGETS[name], seed) is None, (name, seed[:60])


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150)
@given(data=st.binary(max_size=512), pick=st.integers(0, 10**6), rng_seed=st.integers(0, 2**32))
def test_decoders_raise_only_typed_errors(name: str, data: bytes, pick: int, rng_seed: int) -> None:
    corpus = seeds(name)
    mutated = mutate(corpus[pick % len(corpus)], random.Random(rng_seed), corpus)
    for candidate in (data, mutated):
        result = check_one(name, TARGETS[name], candidate)
        assert not isinstance(result, Finding), (result.kind, result.detail, candidate[:80])


def test_the_checker_can_fail() -> None:
    # Goal: an untyped exception is reported, not swallowed.
    from tests.fuzz.targets import Target

    def broken(data: bytes) -> object:
        raise KeyError("bug")

    result = check_one("broken", Target(broken, (ValueError,)), b"x")
    assert isinstance(result, Finding) and "KeyError" in result.detail


def test_a_config_file_that_is_not_utf8_is_a_config_error() -> None:
    # Found by this fuzzer: tomllib's UnicodeDecodeError escaped load_config untyped.
    assert check_one("config_toml", TARGETS["config_toml"], b"[server]\nhost = '\xff'\n") is True
