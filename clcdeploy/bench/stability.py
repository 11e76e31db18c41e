"""Whether a measurement was steady enough to compare with its neighbours in the table.

A phone that heats up, a background app or a shared host shows as timed passes that scatter, or as rounds
whose averages disagree. Such rows are flagged, not dropped: the numbers are still what was measured.
"""

from __future__ import annotations

from clcdeploy.bench.session import Measurement

PASS_SCATTER_LIMIT = 0.10  # sample std / mean of the timed passes
ROUND_SPREAD_LIMIT = 0.10  # highest / lowest round average, minus 1


def unsteadiness(m: Measurement) -> str | None:
    """Why `m` is unsteady ("passes scatter 18%", "round averages 25% apart"), or None when it is steady.
    Runners that report only an aggregate cannot be judged."""
    reasons = []
    if m.std_ms is not None and m.mean_ms > 0 and m.std_ms / m.mean_ms > PASS_SCATTER_LIMIT:
        reasons.append(f"passes scatter {m.std_ms / m.mean_ms:.0%}")
    rounds = m.extra.get("round_means_ms") or []
    if rounds and min(rounds) > 0 and max(rounds) / min(rounds) - 1 > ROUND_SPREAD_LIMIT:
        reasons.append(f"round averages {max(rounds) / min(rounds) - 1:.0%} apart")
    return " and ".join(reasons) or None


def unsteady_warning(measurements: list[Measurement], *, rounds: int, side_by_side: bool,
                     threads: int = 0) -> str | None:
    """One line naming every unsteady measurement and what to do about it (only what the run did not do
    already), or None when all are steady."""
    flagged = [(m, reason) for m in measurements if (reason := unsteadiness(m))]
    if not flagged:
        return None
    several_devices = len({m.device for m in measurements}) > 1
    names = "; ".join(f"{m.model}/{m.format}{f' on {m.device}' if several_devices else ''} ({reason})"
                      for m, reason in flagged)
    advice = ("--rounds 3 shows whether it repeats, " if rounds == 1 else "") + (
        "--side-by-side keeps the ratios between models fair, " if not side_by_side else "")
    return (f"warning: unsteady timings, so ratios involving them are unreliable: {names}. The device was busy, "
            f"throttled or changed speed: {advice}--cooldown S lets a phone cool between models"
            f"{', and on a shared host --threads 1 is steadier' if threads != 1 else ''}")
