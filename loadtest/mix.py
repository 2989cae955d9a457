"""The transaction mix of the load test (issue 7) and how amounts are drawn."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from loadtest.messages import Kind

# Shares of 0200 requests. Withdrawals and deposits are followed by a 0220
# completion, or by a 0420 reversal for ``reversal_share`` of them.
DEFAULT_WEIGHTS: dict[Kind, float] = {
    Kind.WITHDRAWAL: 0.60,
    Kind.BALANCE: 0.25,
    Kind.TRANSFER: 0.05,
    Kind.MINI_STATEMENT: 0.05,
    Kind.DEPOSIT: 0.05,
}
default_reversal_share = 0.02
# Withdrawals are whole multiples of the 100.00 dispense unit (spec 6), under the
# 2,500.00 per-transaction limit.
WITHDRAWAL_AMOUNTS_MINOR = (10_000, 20_000, 30_000, 50_000, 100_000)
DEPOSIT_AMOUNTS_MINOR = (10_000, 50_000, 100_000, 250_000)
transfer_amount_minor_max = 50_000


@dataclass(frozen=True, slots=True)
class Mix:
    weights: dict[Kind, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    reversal_share: float = default_reversal_share

    def __post_init__(self) -> None:
        if not self.weights or any(w < 0 for w in self.weights.values()):
            raise ValueError("mix weights must be non-negative and not empty")
        if sum(self.weights.values()) <= 0:
            raise ValueError("mix weights must not all be zero")
        if not 0.0 <= self.reversal_share <= 1.0:
            raise ValueError("reversal share must be within 0..1")


class MixChooser:
    """Draws the next transaction kind and its amount from one process's RNG."""

    def __init__(self, mix: Mix, rng: random.Random) -> None:
        self.rng = rng
        self.reversal_share = mix.reversal_share
        self._kinds = list(mix.weights)
        total = sum(mix.weights.values())
        running = 0.0
        self._cumulative: list[float] = []
        for kind in self._kinds:
            running += mix.weights[kind] / total
            self._cumulative.append(running)
        self._cumulative[-1] = 1.0

    def next_kind(self) -> Kind:
        return self._kinds[bisect.bisect_right(self._cumulative, self.rng.random())]

    def amount(self, kind: Kind) -> int:
        if kind is Kind.WITHDRAWAL:
            return self.rng.choice(WITHDRAWAL_AMOUNTS_MINOR)
        if kind is Kind.DEPOSIT:
            return self.rng.choice(DEPOSIT_AMOUNTS_MINOR)
        if kind is Kind.TRANSFER:
            return self.rng.randint(100, transfer_amount_minor_max)
        return 0  # inquiries carry a zero amount (spec 4)

    def reverse_instead_of_complete(self) -> bool:
        return self.rng.random() < self.reversal_share
