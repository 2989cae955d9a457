"""Cached MAC cipher contexts give the same MACs as fresh ones, whatever the call order.

Goal: the persistent CBC context of a retail-MAC key (restarted per message from
its last block) never lets one message's chain leak into the next, under any
interleaving of keys and lengths, when another thread holds the chain, or after a
call died half-way. Method: hypothesis draws keys and message sequences and
compares :func:`retail_mac` with :func:`retail_mac_uncached` (fresh contexts,
the published vectors in test_primitives_vectors.py pin that one) and with an
independent implementation (psec); the HSM's own MAC is checked the same way.
"""

from __future__ import annotations

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st
from psec import mac as psec_mac

from switch.hsm import SoftwareHsm
from switch.hsm.primitives.mac import (
    RetailMacKey,
    aes_cmac,
    retail_mac,
    retail_mac_key,
    retail_mac_uncached,
)
from tests.hsm.test_benchmarks import run_sync

keys = st.binary(min_size=16, max_size=16)
messages = st.binary(max_size=300)


@settings(max_examples=500)
@given(
    st.lists(st.tuples(st.integers(0, 3), messages), min_size=1, max_size=12),
    st.lists(keys, min_size=4, max_size=4),
)
def test_cached_equals_uncached_in_any_order(
    calls: list[tuple[int, bytes]], key_pool: list[bytes]
) -> None:
    for which, data in calls:
        key = key_pool[which]
        expected = retail_mac_uncached(key, data)
        assert retail_mac(key, data) == expected
        assert psec_mac.generate_retail_mac(key[:8], key[8:], data, 1) == expected


@settings(max_examples=200)
@given(keys, messages, messages)
def test_busy_or_broken_chain_still_gives_the_right_mac(
    key: bytes, first: bytes, second: bytes
) -> None:
    context = RetailMacKey(key)
    assert context.mac(first) == retail_mac_uncached(key, first)
    # Another thread holds the chain: this call must not touch it.
    context._busy.acquire()
    try:
        assert context.mac(second) == retail_mac_uncached(key, second)
    finally:
        context._busy.release()
    # A call died between its update and its bookkeeping: the chain is restarted.
    context._chain_last = -1
    assert context.mac(second) == retail_mac_uncached(key, second)
    assert context.mac(first) == retail_mac_uncached(key, first)


def test_contexts_are_cached_per_key_and_hide_the_key() -> None:
    key = secrets.token_bytes(16)
    assert retail_mac_key(key) is retail_mac_key(bytes(key))
    assert key.hex() not in repr(retail_mac_key(key)).lower()
    assert retail_mac_key(secrets.token_bytes(16)) is not retail_mac_key(key)


@settings(max_examples=100)
@given(st.binary(min_size=16, max_size=16), messages)
def test_aes_cmac_cache_matches_a_fresh_cmac(key: bytes, data: bytes) -> None:
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import algorithms

    fresh = cmac.CMAC(algorithms.AES(key))
    fresh.update(data)
    assert aes_cmac(key, data) == fresh.finalize()


def test_hsm_macs_match_uncached_for_each_terminal(hsm: SoftwareHsm) -> None:
    # Two terminals' TAKs interleaved: each MAC is the one computed from scratch.
    tmks = [
        run_sync(hsm.import_clear_key_test_mode(secrets.token_hex(16), usage="K0"))
        for _ in range(2)
    ]
    taks = [run_sync(hsm.issue_terminal_working_keys(tmk)).tak for tmk in tmks]
    clear = [hsm._unwrap(tak).key for tak in taks]
    for round_ in range(6):
        data = secrets.token_bytes(40 + 37 * round_)
        for tak, key in zip(taks, clear, strict=True):
            mac_hex = run_sync(hsm.generate_mac(tak, data))
            assert mac_hex == retail_mac_uncached(key, data).hex().upper()
            run_sync(hsm.verify_mac(tak, data, mac_hex))
