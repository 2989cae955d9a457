"""Store-and-forward of advices (spec 5.3, 5.4): a 0220/0420 is kept on the terminal's disk from
the moment it is decided until its 0230/0430 arrives, and survives a terminal restart.

The store is a JSON-lines file of operations (``add``, ``sent``, ``ack``), each fsynced before the
call returns, replayed on open; it is compacted (rewritten with only the open advices) when opened.
An advice carries the full PAN (field 2) and expiry, so its fields are stored encrypted with
AES-256-GCM under a terminal-local key file (mode 0600) next to the store: the disk never holds a
clear PAN. The first transmission uses the MTI as queued; later ones its repeat (0221 / 0421),
with exactly the same fields, STAN included (spec 5.3).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

store_key_bytes = 32
gcm_nonce_bytes = 12
# A terminal that cannot reach its host for a long time stops taking cash business before this.
advices_open_max = 10_000
_REPEAT_MTI = {"0220": "0221", "0420": "0421"}


class StoreError(Exception):
    """The store file or its key is damaged, or the store is full."""


@dataclass
class StoredAdvice:
    """One advice waiting for its answer."""

    advice_id: int
    mti: str  # as first queued: 0220 or 0420
    fields: dict[str, str]
    attempts: int = 0
    context: dict[str, Any] = field(default_factory=dict)  # masked facts for the journal

    @property
    def mti_to_send(self) -> str:
        """0220/0420 the first time, 0221/0421 after (spec 5.3: repeats change only the MTI)."""
        return self.mti if self.attempts == 0 else _REPEAT_MTI[self.mti]


class StoreAndForward:
    """The terminal's queue of advices, durable across restarts."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "advices.jsonl"
        self._cipher = AESGCM(_load_or_create_key(directory / "advices.key"))
        self._open: dict[int, StoredAdvice] = {}
        self._next_id = 1
        self._replay()
        self._compact()

    def add(self, mti: str, fields: Mapping[str, str], context: Mapping[str, Any] | None = None
            ) -> StoredAdvice:
        """Queue an advice durably (fsynced before this returns)."""
        if mti not in _REPEAT_MTI:
            raise ValueError(f"only 0220 and 0420 are stored and forwarded, not {mti}")
        if len(self._open) >= advices_open_max:
            raise StoreError("store-and-forward queue is full")
        advice = StoredAdvice(self._next_id, mti, dict(fields), 0, dict(context or {}))
        self._next_id += 1
        self._append({"op": "add", "id": advice.advice_id, "mti": mti,
                      "fields": self._seal(advice.fields), "context": advice.context})
        self._open[advice.advice_id] = advice
        return advice

    def mark_sent(self, advice: StoredAdvice) -> None:
        """Record a transmission: from now on the advice goes as a repeat."""
        advice.attempts += 1
        self._append({"op": "sent", "id": advice.advice_id})

    def acknowledge(self, advice: StoredAdvice) -> None:
        """The host answered: forget the advice."""
        self._append({"op": "ack", "id": advice.advice_id})
        self._open.pop(advice.advice_id, None)

    def pending(self) -> list[StoredAdvice]:
        """Open advices, oldest first (the order they must reach the host in)."""
        return [self._open[key] for key in sorted(self._open)]

    def __len__(self) -> int:
        return len(self._open)

    # -- file ----------------------------------------------------------------------------
    def _replay(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    break  # a torn last line: the write it belonged to never returned
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    raise StoreError(f"{self.path}:{number}: damaged record") from exc

    def _apply(self, record: Mapping[str, Any]) -> None:
        advice_id = int(record["id"])
        self._next_id = max(self._next_id, advice_id + 1)
        if record["op"] == "add":
            fields = self._open_sealed(str(record["fields"]))
            self._open[advice_id] = StoredAdvice(
                advice_id, str(record["mti"]), fields, int(record.get("attempts", 0)),
                dict(record.get("context", {})))
        elif record["op"] == "sent" and advice_id in self._open:
            self._open[advice_id].attempts += 1
        elif record["op"] == "ack":
            self._open.pop(advice_id, None)

    def _compact(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for advice in self.pending():
                record = {"op": "add", "id": advice.advice_id, "mti": advice.mti,
                          "attempts": advice.attempts, "fields": self._seal(advice.fields),
                          "context": advice.context}
                handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def _append(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _seal(self, fields: Mapping[str, str]) -> str:
        nonce = os.urandom(gcm_nonce_bytes)
        clear = json.dumps(fields, sort_keys=True).encode("utf-8")
        return base64.b64encode(nonce + self._cipher.encrypt(nonce, clear, b"advice")).decode()

    def _open_sealed(self, sealed: str) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(sealed)
        try:
            clear = self._cipher.decrypt(raw[:gcm_nonce_bytes], raw[gcm_nonce_bytes:], b"advice")
        except InvalidTag as exc:
            raise StoreError("an advice does not decrypt under the store key") from exc
        fields = json.loads(clear)
        if not isinstance(fields, dict):
            raise StoreError("an advice's fields are not an object")
        return {str(k): str(v) for k, v in fields.items()}


def _load_or_create_key(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes()
        if len(key) != store_key_bytes:
            raise StoreError(f"{path} is not a {store_key_bytes}-byte key")
        return key
    key = AESGCM.generate_key(bit_length=store_key_bytes * 8)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key
