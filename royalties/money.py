"""Money arithmetic: the one place where amounts are divided.

Amounts are integers in minor units (cents) with an ISO 4217 currency; rates
are integers in basis points (1 bp = 0.01 %, 10,000 bp = 100 %). No float
ever touches an amount.

The rounding rule (written once, used everywhere):

1. A percentage of an amount (a platform fee, a revenue share) is rounded
   DOWN to the minor unit: ``amount × bps // 10,000``. The platform never
   takes a fraction of a cent it did not earn, and a revenue share never
   claims a cent that was not owed.
2. Dividing an amount between several parties by basis points (performer
   splits) first gives each party the rounded-down part, then hands out the
   minor units left over, one each, to the parties with the largest dropped
   fractions; ties go to the party listed first in the order the caller gives
   (callers order performers by id, so the result is deterministic). The parts
   always add up to the whole: no cent is created or lost.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

TOTAL_BPS = 10_000

# ISO 4217 minor-unit exponents of the currencies the platform prices in.
MINOR_UNITS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2}
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


@dataclass(frozen=True, order=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amount_minor must be an int (minor units)")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        _same_currency(self, other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        _same_currency(self, other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __str__(self) -> str:
        return format_money(self.amount_minor, self.currency)


def _same_currency(a: Money, b: Money) -> None:
    if a.currency != b.currency:
        raise ValueError(f"cannot combine {a.currency} and {b.currency}")


def percentage_of(amount_minor: int, bps: int) -> int:
    """Rule 1: ``bps`` basis points of an amount, rounded down."""
    if not 0 <= bps <= TOTAL_BPS:
        raise ValueError("basis points must be between 0 and 10,000")
    if amount_minor < 0:
        # Symmetric for reversals: the share of −x is −(share of x).
        return -percentage_of(-amount_minor, bps)
    return amount_minor * bps // TOTAL_BPS


def allocate(amount_minor: int, shares: Sequence[tuple[Hashable, int]]) -> dict[Hashable, int]:
    """Rule 2: divide ``amount_minor`` by basis-point shares that sum to
    10,000, so that the parts add up to exactly ``amount_minor``."""
    if sum(bps for _, bps in shares) != TOTAL_BPS:
        raise ValueError("shares must add up to 10,000 basis points")
    return allocate_by_weight(amount_minor, shares)


def allocate_by_weight(
    amount_minor: int, weights: Sequence[tuple[Hashable, int]]
) -> dict[Hashable, int]:
    """Rule 2 with any positive integer weights (e.g. equal parts of a pack)."""
    if not weights:
        raise ValueError("at least one share is needed")
    if any(weight < 0 for _, weight in weights) or sum(w for _, w in weights) <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    if amount_minor < 0:
        return {key: -part for key, part in allocate_by_weight(-amount_minor, weights).items()}
    total_weight = sum(weight for _, weight in weights)
    parts = {}
    remainders = []
    for position, (key, weight) in enumerate(weights):
        if key in parts:
            raise ValueError(f"party {key!r} appears twice")
        whole, remainder = divmod(amount_minor * weight, total_weight)
        parts[key] = whole
        remainders.append((-remainder, position, key))
    leftover = amount_minor - sum(parts.values())
    for _, _, key in sorted(remainders)[:leftover]:
        parts[key] += 1
    return parts


def format_money(amount_minor: int, currency: str) -> str:
    """1234567, "USD" → "$12,345.67"; negative amounts get a leading minus."""
    exponent = MINOR_UNITS.get(currency, 2)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    symbol = SYMBOLS.get(currency)
    number = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"
