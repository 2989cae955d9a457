"""Key handles: TR-31 version D key blocks under the LMK, unwrapped through a bounded cache.

A handle is plain text, safe to store in PostgreSQL or print: without the LMK
it reveals nothing, and its header (usage, algorithm, mode of use,
exportability) is bound to the key by the block's CMAC. Unwrapping costs two
CMAC derivations and a decryption, so recently used handles are kept clear in
memory, in this process only (bounded LRU, ``key_cache_entries_max``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from switch.hsm.errors import KeyHandleError
from switch.hsm.primitives.errors import KeyBlockError
from switch.hsm.primitives.tr31 import Tr31Header, tr31_unwrap, tr31_wrap

# About 3 keys per terminal (TMK, TPK, TAK) for a few thousand terminals, plus PVKs.
key_cache_entries_max = 16_384
# A handle longer than this is not one of ours (a 256-bit key with blocks is < 200 chars).
handle_chars_max = 512


@dataclass(frozen=True, slots=True, repr=False)
class ClearKey:
    """A key unwrapped inside the HSM. ``repr`` hides the key bytes."""

    header: Tr31Header
    key: bytes

    def __repr__(self) -> str:
        return f"ClearKey(usage={self.header.key_usage}, algorithm={self.header.algorithm})"


class KeyStore:
    """Wraps keys under the LMK and unwraps handles (cached)."""

    def __init__(self, lmk: bytes, *, cache_entries_max: int = key_cache_entries_max) -> None:
        if len(lmk) != 32:
            raise KeyHandleError("the LMK is an AES-256 key (32 bytes)")
        self._lmk = lmk
        self._cache: OrderedDict[str, ClearKey] = OrderedDict()
        self._cache_entries_max = cache_entries_max

    def wrap(self, header: Tr31Header, key: bytes) -> str:
        """A new handle for ``key`` with the attributes of ``header`` (stored as version D)."""
        lmk_header = Tr31Header(
            "D",
            header.key_usage,
            header.algorithm,
            header.mode_of_use,
            header.key_version,
            header.exportability,
            header.optional_blocks,
        )
        handle = tr31_wrap(self._lmk, lmk_header, key)
        self._remember(handle, ClearKey(lmk_header, key))
        return handle

    def unwrap(self, handle: str) -> ClearKey:
        """The clear key behind a handle, or ``KeyHandleError``."""
        cached = self._cache.get(handle)
        if cached is not None:
            self._cache.move_to_end(handle)
            return cached
        if not isinstance(handle, str) or len(handle) > handle_chars_max or handle[:1] != "D":
            raise KeyHandleError("not a key handle of this HSM (expected a TR-31 D block)")
        try:
            header, key = tr31_unwrap(self._lmk, handle)
        except KeyBlockError:
            raise KeyHandleError("key handle is malformed or not under this LMK") from None
        clear = ClearKey(header, key)
        self._remember(handle, clear)
        return clear

    def _remember(self, handle: str, clear: ClearKey) -> None:
        self._cache[handle] = clear
        if len(self._cache) > self._cache_entries_max:
            self._cache.popitem(last=False)
