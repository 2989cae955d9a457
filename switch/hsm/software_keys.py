"""``SoftwareKeyManagement``: the key store of the software HSM and the operations that make,
form, import and export keys (``SoftwareHsm`` extends it with the operations that use them).

Apart from ``software.py`` so that the key ceremony, with its one documented exception (the
clear components of a newly generated key), reads on its own. Every key leaves as an LMK
handle or a TR-31 block under a KEK; clear key material only with
``import_clear_key_test_mode``, refused outside test mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from switch.hsm import key_management as km
from switch.hsm.errors import KeyMaterialError, TestModeRequired
from switch.hsm.key_usage import check_new_key, require
from switch.hsm.keystore import ClearKey, KeyStore
from switch.hsm.results import KeyComponents, KeyInfo, TerminalWorkingKeys


class SoftwareKeyManagement:
    """The LMK key store and the key-management methods of the ``Hsm`` protocol."""

    def __init__(self, lmk: bytes, *, test_mode: bool = False) -> None:
        self._store = KeyStore(lmk)
        self.test_mode = test_mode

    def __repr__(self) -> str:  # never the LMK or a key: ``SoftwareHsm(test_mode=False)``
        return f"{type(self).__name__}(test_mode={self.test_mode})"

    def _unwrap(self, handle: str) -> ClearKey:
        return self._store.unwrap(handle)

    def _require_test_mode(self, what: str) -> None:
        if not self.test_mode:
            raise TestModeRequired(f"{what} handles clear secrets; it needs hsm.test_mode = true")

    # -- key management -------------------------------------------------------------------

    async def generate_key(
        self,
        usage: str,
        *,
        algorithm: str = "T",
        length_bytes: int = 16,
        exportable: bool = False,
        mode_of_use: str | None = None,
    ) -> str:
        """A new random key of ``usage``, returned as an LMK handle.

        Non-exportable unless asked (PCI PIN: PVKs and working keys never leave the HSM;
        a key that must travel is made exportable on purpose)."""
        check_new_key(usage, algorithm, length_bytes)
        key = km.random_key(algorithm, length_bytes)
        return km.store_new_key(
            self._store, usage, algorithm, key, exportable=exportable, mode=mode_of_use
        )

    async def key_check_value(self, handle: str) -> str:
        """The key's 6-hex check value (TDES: encrypt zeros; AES: CMAC method)."""
        key = self._unwrap(handle)
        return km.kcv_of(key.header.algorithm, key.key)

    async def key_info(self, handle: str) -> KeyInfo:
        """Usage, algorithm, mode of use, exportability, length and KCV of a handle."""
        key = self._unwrap(handle)
        header = key.header
        return KeyInfo(
            header.key_usage,
            header.algorithm,
            header.mode_of_use,
            header.exportability,
            len(key.key),
            km.kcv_of(header.algorithm, key.key),
        )

    async def form_key_from_components(
        self,
        components: Sequence[str],
        *,
        usage: str,
        algorithm: str = "T",
        component_kcvs: Sequence[str] | None = None,
        exportable: bool = False,
    ) -> str:
        """XOR 2 or 3 clear components (dual control) into a key; optional per-component KCVs."""
        parts = km.parse_components(components, algorithm)
        if component_kcvs is not None:
            km.check_component_kcvs(parts, component_kcvs, algorithm)
        key = km.combine_components(parts)
        return km.store_new_key(self._store, usage, algorithm, key, exportable=exportable)

    async def generate_key_components(
        self,
        usage: str,
        *,
        algorithm: str = "T",
        count: int = 2,
        length_bytes: int = 16,
        exportable: bool = False,
    ) -> KeyComponents:
        """A new key plus its clear components with KCVs -- the key ceremony exception.

        Iterable as ``(handle, [(component_hex, kcv)], kcv)``.
        """
        if not km.components_count_min <= count <= km.components_count_max:
            raise KeyMaterialError("a key is split into 2 or 3 components")
        check_new_key(usage, algorithm, length_bytes)
        parts = [km.random_key(algorithm, length_bytes) for _ in range(count)]
        handle = km.store_new_key(
            self._store, usage, algorithm, km.combine_components(parts), exportable=exportable
        )
        shown = [(p.hex().upper(), km.kcv_of(algorithm, p)) for p in parts]
        return KeyComponents(handle, shown, await self.key_check_value(handle))

    async def import_clear_key_test_mode(
        self, clear_hex: str, *, usage: str, algorithm: str = "T", exportable: bool = True
    ) -> str:
        """Wrap a clear key given in hex (fixtures only; refused unless test mode)."""
        self._require_test_mode("importing a clear key")
        try:
            key = bytes.fromhex(clear_hex)
        except ValueError:
            raise KeyMaterialError("a clear key is hexadecimal") from None
        return km.store_new_key(self._store, usage, algorithm, key, exportable=exportable)

    async def export_key(
        self, handle: str, *, kek: str, mode_of_use: str | None = None, exportability: str = "N"
    ) -> str:
        """The key as a TR-31 block under a KEK (B under a TDES KEK, D under an AES KEK)."""
        return km.export_block(
            self._unwrap(handle),
            self._unwrap(kek),
            mode_of_use=mode_of_use,
            exportability=exportability,
        )

    async def import_key(self, block: str, *, kek: str) -> str:
        """Import a TR-31 block wrapped under ``kek``; the result keeps the block's attributes."""
        return km.import_block(self._store, block, self._unwrap(kek))

    async def create_terminal_master_key(self, key_type: str = "tdes") -> KeyComponents:
        """A terminal's TMK (double-length TDES or AES-128) as two printed components."""
        algorithm = {"tdes": "T", "aes": "A"}.get(key_type)
        if algorithm is None:
            raise KeyMaterialError(f"terminal key type is 'tdes' or 'aes', not {key_type!r}")
        return await self.generate_key_components("K0", algorithm=algorithm, count=2)

    async def issue_terminal_working_keys(self, tmk: str) -> TerminalWorkingKeys:
        """New TPK and TAK for a key exchange (spec 5.1, 7): handles plus blocks under the TMK."""
        tmk_key = self._unwrap(tmk)
        require(tmk_key.header, frozenset({"K0"}), frozenset("BE"), "terminal key exchange")
        aes = tmk_key.header.algorithm == "A"
        algorithm, mac_usage = ("A", "M6") if aes else ("T", "M3")
        # Generated and wrapped under the TMK in one step, stored non-exportable: the
        # terminal's copy is the only one that ever leaves the HSM.
        tpk, tpk_block = km.generate_for_delivery(self._store, "P0", tmk_key, algorithm, "E")
        tak, tak_block = km.generate_for_delivery(self._store, mac_usage, tmk_key, algorithm, "C")
        return TerminalWorkingKeys(
            tpk,
            tak,
            tpk_block,
            tak_block,
            await self.key_check_value(tpk),
            await self.key_check_value(tak),
        )
