"""The group-parameter optimiser of the clcNet paper, Eq. (2).

For a CLC block (KxK IGC with g1 groups, M -> L, then 1x1 GC with g2 groups, L -> N) the cost per output
location is C(g1, g2) = A*L*M/g1 + N*L/g2 (A = kernel area). Minimise it over integer group counts with
1 <= g1 <= min(M, L), 1 <= g2 <= min(L, N), g1 | M, g1 | L, g2 | L, g2 | N, and g1*g2 <= L (Eq. 1: full
channel receptive field). The range is small, so enumerate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clcdeploy.errors import ConfigurationError


@dataclass(frozen=True)
class GroupChoice:
    g1: int
    g2: int
    cost: int


def block_cost(M: int, L: int, N: int, g1: int, g2: int, kernel_area: int = 9) -> int:
    """Mult-adds per output location of a CLC block with the given groups (paper Eq. 2)."""
    return kernel_area * L * M // g1 + N * L // g2


MAX_CHANNELS = 1_000_000  # far beyond any CNN layer; keeps the enumeration (and a typo's cost) small


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def optimal_groups(M: int, L: int, N: int, kernel_area: int = 9) -> GroupChoice:
    """The (g1, g2) of least cost that keep the block's full channel receptive field.

    Ties go to the larger g2, i.e. the cheaper 1x1 stage, which also gives the IGC the smaller channel
    receptive field (the paper's Table 1 never has a tie).
    """
    for label, value in (("M (--in)", M), ("L (--mid)", L), ("N (--out)", N), ("kernel area", kernel_area)):
        if value < 1:
            raise ConfigurationError(f"{label} must be a positive integer, got {value}")
        if value > MAX_CHANNELS:
            raise ConfigurationError(f"{label} must be at most {MAX_CHANNELS:,}, got {value:,}")
    best = None
    for g1 in _divisors(min(M, L)):
        if M % g1 or L % g1:
            continue
        for g2 in _divisors(min(L, N)):
            if L % g2 or N % g2 or g1 * g2 > L:
                continue
            choice = GroupChoice(g1, g2, block_cost(M, L, N, g1, g2, kernel_area))
            if best is None or (choice.cost, -choice.g2) < (best.cost, -best.g2):
                best = choice
    return best  # never None: g1 = g2 = 1 is always feasible
