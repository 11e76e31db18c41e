"""The group-parameter optimiser (paper Eq. 2) must reproduce all ten rows of the clcNet paper's Table 1."""

import pytest

from clcdeploy.analysis.groups import block_cost, optimal_groups
from clcdeploy.errors import ConfigurationError

TABLE_1 = [  # M, L, N, g1, g2
    (32, 32, 64, 16, 2), (64, 64, 64, 32, 2), (64, 64, 128, 16, 4), (128, 128, 128, 32, 4),
    (128, 128, 256, 32, 4), (256, 256, 256, 64, 4), (256, 256, 512, 32, 8), (512, 512, 512, 64, 8),
    (512, 512, 1024, 64, 8), (1024, 1024, 1024, 128, 8),
]


@pytest.mark.parametrize("M, L, N, g1, g2", TABLE_1)
def test_reproduces_table_1(M, L, N, g1, g2):
    choice = optimal_groups(M, L, N, kernel_area=9)
    assert (choice.g1, choice.g2) == (g1, g2)
    assert choice.cost == block_cost(M, L, N, g1, g2) == 9 * L * M // g1 + N * L // g2


def test_constraints_hold_for_other_kernel_areas():
    for area in (1, 9, 25):
        for M, L, N in ((24, 48, 36), (96, 96, 160), (7, 14, 21)):
            choice = optimal_groups(M, L, N, kernel_area=area)
            assert choice.g1 * choice.g2 <= L
            assert M % choice.g1 == L % choice.g1 == L % choice.g2 == N % choice.g2 == 0
            brute = min(block_cost(M, L, N, a, b, area) for a in range(1, L + 1) for b in range(1, L + 1)
                        if M % a == L % a == L % b == N % b == 0 and a * b <= L)
            assert choice.cost == brute


def test_rejects_non_positive_channels():
    with pytest.raises(ConfigurationError, match="M"):
        optimal_groups(0, 8, 8)


def test_large_channel_counts_are_quick_and_absurd_ones_refused():
    """Divisors come from up to sqrt(n) trial divisions: a million channels is answered at once."""
    choice = optimal_groups(720_720, 720_720, 720_720)  # 240 divisors
    assert choice.g1 * choice.g2 <= 720_720 and 720_720 % choice.g1 == 720_720 % choice.g2 == 0
    with pytest.raises(ConfigurationError, match="at most 1,000,000"):
        optimal_groups(10**9, 10**9, 10**9)


# The clcNet paper's Table 2 (L = M for every block, g2 fixed to 2): input, output, g1.
TABLE_2 = [(32, 64, 16), (64, 128, 32), (128, 128, 64), (128, 256, 64), (256, 256, 128), (256, 512, 128),
           (512, 512, 256), (512, 1024, 256), (1024, 1024, 512)]


@pytest.mark.parametrize("M, N, g1", TABLE_2)
def test_fixed_g2_reproduces_table_2(M, N, g1):
    choice = optimal_groups(M, M, N, kernel_area=9, g2=2)
    assert (choice.g1, choice.g2) == (g1, 2)
    assert choice.igc_crf(M) == 2  # "make the channel receptive field size of the IGC kernel equal to 2"


def test_ties_go_to_the_larger_g2_which_gives_the_igc_the_larger_crf():
    """M = L = N = 32, A = 1: (g1, g2) = (4, 8) and (8, 4) cost the same; the docstring's claim is checked."""
    M = L = N = 32
    choice = optimal_groups(M, L, N, kernel_area=1)
    tied = [(a, b) for a in range(1, L + 1) for b in range(1, L + 1)
            if M % a == L % a == L % b == N % b == 0 and a * b <= L and block_cost(M, L, N, a, b, 1) == choice.cost]
    assert len(tied) > 1
    assert choice.g2 == max(b for _, b in tied)
    assert choice.igc_crf(M) == max(M // a for a, _ in tied)


def test_a_fixed_g2_must_divide_l_and_n():
    with pytest.raises(ConfigurationError, match="g2 3 must divide both L"):
        optimal_groups(64, 64, 128, g2=3)
    with pytest.raises(ConfigurationError, match="g2"):
        optimal_groups(64, 64, 128, g2=0)
