"""The group-parameter optimiser of the clcNet paper, Eq. (2).

For a CLC block (KxK IGC with g1 groups, M -> L, then 1x1 GC with g2 groups, L -> N) the cost per output
location is C(g1, g2) = A*L*M/g1 + N*L/g2 (A = kernel area). Minimise it over integer group counts with
1 <= g1 <= min(M, L), 1 <= g2 <= min(L, N), g1 | M, g1 | L, g2 | L, g2 | N, and g1*g2 <= L (Eq. 1: full
channel receptive field). The range is small, so enumerate.

The IGC's channel receptive field (CRF) is M/g1 input channels, the GC's L/g2; the block has a full channel
receptive field (FCRF: every output depends on all M inputs) when L/g2 >= g1, i.e. g1*g2 <= L. The paper's
network (its Table 2) does not use the unconstrained optimum: it fixes g2 = 2 and minimises over g1 alone
(`g2=2` here), which gives g1 = L/2 and an IGC CRF of M/g1 = 2 when L = M.
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

    def igc_crf(self, M: int) -> int:
        """Channel receptive field of the IGC: input channels per output channel, M/g1."""
        return M // self.g1

    def gc_crf(self, L: int) -> int:
        """Channel receptive field of the 1x1 GC: intermediate channels per output channel, L/g2."""
        return L // self.g2


def block_cost(M: int, L: int, N: int, g1: int, g2: int, kernel_area: int = 9) -> int:
    """Mult-adds per output location of a CLC block with the given groups (paper Eq. 2)."""
    return kernel_area * L * M // g1 + N * L // g2


MAX_CHANNELS = 1_000_000  # far beyond any CNN layer; keeps the enumeration (and a typo's cost) small


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def optimal_groups(M: int, L: int, N: int, kernel_area: int = 9, g2: int | None = None) -> GroupChoice:
    """The (g1, g2) of least cost that keep the block's full channel receptive field; with `g2`, the best g1
    for that fixed g2 (as the paper's Table 2 does with g2 = 2).

    Ties (equal cost) go to the larger g2, the cheaper 1x1 stage; since g1*g2 <= L, that is also the smaller
    g1, so the IGC gets the *larger* channel receptive field M/g1 (e.g. M = L = N = 32, A = 1: (g1, g2) =
    (4, 8) and (8, 4) both cost 384; the answer is (4, 8), an IGC CRF of 8 rather than 4). The paper's
    Table 1 never has a tie.
    """
    for label, value in (("M (--in)", M), ("L (--mid)", L), ("N (--out)", N), ("kernel area", kernel_area),
                         ("g2 (--g2)", 1 if g2 is None else g2)):
        if value < 1:
            raise ConfigurationError(f"{label} must be a positive integer, got {value}")
        if value > MAX_CHANNELS:
            raise ConfigurationError(f"{label} must be at most {MAX_CHANNELS:,}, got {value:,}")
    if g2 is not None and (L % g2 or N % g2):
        common = [str(d) for d in _divisors(math.gcd(L, N))]
        listed = ", ".join(common[:12]) + (", ..." if len(common) > 12 else "")
        raise ConfigurationError(f"g2 {g2} must divide both L (--mid, {L}) and N (--out, {N}); "
                                 f"choose one of {listed}")
    best = None
    for g1 in _divisors(min(M, L)):
        if M % g1 or L % g1:
            continue
        for candidate in _divisors(min(L, N)) if g2 is None else [g2]:
            if L % candidate or N % candidate or g1 * candidate > L:
                continue
            choice = GroupChoice(g1, candidate, block_cost(M, L, N, g1, candidate, kernel_area))
            if best is None or (choice.cost, -choice.g2) < (best.cost, -best.g2):
                best = choice
    return best  # never None: g1 = 1 is feasible for every g2 that divides L
