"""Benchmarking on a device: runners, per-pass latency collection, statistics, reports. No torch here."""
