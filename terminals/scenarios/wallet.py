"""The customers' chip cards across sessions and runs: one :class:`ChipCard` per card, whose ATC
is remembered in the terminal's data directory (``chip_cards.json``).

Why: a real card's ATC lives in its own memory and only ever rises; the switch refuses an ATC it
has already accepted (spec 11, replay). A scenario played twice against one switch must
therefore not restart its cards' ATCs at the scenario's starting value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from terminals.atm.session import parse_track2
from terminals.emulators.chip_card import ChipCard
from terminals.scenarios.loader import SessionScript

WALLET_FILE = "chip_cards.json"


class ChipWallet:
    """Chip cards by PAN and PSN; the stored ATCs are never lowered."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / WALLET_FILE
        self.cards: dict[str, ChipCard] = {}
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            stored = {}
        self._atcs: dict[str, int] = {str(k): int(v) for k, v in stored.items()
                                      if isinstance(v, int)} if isinstance(stored, dict) else {}

    def card_for(self, session: SessionScript) -> ChipCard | None:
        """The session's chip card (the same object each time that card comes back)."""
        if session.chip is None:
            return None
        pan, expiry = parse_track2(session.card)
        key = f"{pan[:6]}...{pan[-4:]}/{session.chip.psn}"  # masked: the file holds no PAN
        card = self.cards.get(key)
        if card is None:
            service_code = session.card.partition("=")[2][4:7] or "220"
            atc = max(session.chip.atc, self._atcs.get(key, 0))
            card = ChipCard.personalise(session.chip.imk_ac, pan, expiry, session.chip.psn,
                                        atc=atc, service_code=service_code)
            self.cards[key] = card
        return card

    def save(self) -> None:
        """Write every card's ATC (atomically: a torn file would restart the ATCs)."""
        atcs = {**self._atcs, **{key: card.atc for key, card in self.cards.items()}}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(atcs, indent=1, sort_keys=True))
        os.replace(temporary, self.path)
