"""Counts as the tables and messages print them (no torch here: the bench side uses it too)."""

from __future__ import annotations


def millions(count: int) -> str:
    """Mult-adds or parameters in millions: "569M", or two decimals below 100M ("0.91M", "42.50M")."""
    return f"{count / 1e6:.0f}M" if count >= 100_000_000 else f"{count / 1e6:.2f}M"
