"""The analysis commands as a user runs them: a real subprocess, JSON output, one-line errors, exit 2."""

import json
import subprocess
import sys

import pytest


def clcdeploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clcdeploy", *args], capture_output=True, text=True, timeout=300)


def test_analyze_json_reports_fcrf_per_block():
    result = clcdeploy("analyze", "clcnet_tiny", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["name"] == "clcnet_tiny" and report["input_size"] == 32 and report["fcrf"] is True
    assert report["macs"] > 0 and report["params"] > 0
    block = report["blocks"][0]
    assert {"name", "crf", "in_channels", "fcrf"} <= set(block) and block["crf"] == block["in_channels"]


def test_analyze_ablation_loses_fcrf_and_input_size_override():
    report = json.loads(clcdeploy("analyze", "clcnet_ap_tiny", "--input-size", "64", "--json").stdout)
    assert report["input_size"] == 64 and report["fcrf"] is False
    assert all(not b["fcrf"] for b in report["blocks"])


def test_models_json_lists_the_zoo():
    rows = json.loads(clcdeploy("models", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"clcnet_a", "clcnet_b", "clcnet_ap", "mobilenet_v1", "shufflenet_v1_2x", "channelnet_v1"} <= set(by_name)
    assert by_name["clcnet_a"]["paper"] == "001_83a6dd6bd18db7e3.txt"
    assert by_name["channelnet_v2"]["paper"] == "002_cce4fba1ebea6d39.txt"
    # issue 8's families name their seed files too: models A-K of seed 003, the Table 2-4 rows of seed 004
    sic = {n: r["paper"] for n, r in by_name.items() if n.startswith("sic_")}
    sparse_kernel = {n: r["paper"] for n, r in by_name.items() if n.startswith("sk_")}
    assert len(sic) == 11 and set(sic.values()) == {"003_25066adab681e7c7.txt"}
    assert len(sparse_kernel) == 20 and set(sparse_kernel.values()) == {"004_41d68caf3c6e4699.txt"}
    assert abs(by_name["clcnet_a"]["macs"] - 343e6) / 343e6 < 0.005
    assert all({"name", "macs", "params", "input_size", "paper"} <= set(r) for r in rows)
    assert not any(r["tiny"] for r in rows)


def test_groups_json():
    result = clcdeploy("groups", "--in", "256", "--mid", "256", "--out", "512", "--json")
    answer = json.loads(result.stdout)
    assert (answer["g1"], answer["g2"], answer["cost"]) == (32, 8, 9 * 256 * 256 // 32 + 512 * 256 // 8)


@pytest.mark.parametrize("args, message", [
    (("analyze", "clcnet_c"), "unknown model 'clcnet_c': did you mean"),
    # the same check as export's: the first layer whose map is smaller than its stride is named
    (("analyze", "clcnet_tiny", "--input-size", "16"), "input size 16 is too small for clcnet_tiny: blocks.7"),
    # 192 TB for the input alone: more than a 47-bit address space, so the allocation fails whatever the overcommit
    (("analyze", "clcnet_tiny", "--input-size", "4000000"), "input size 4000000 is too large for clcnet_tiny"),
    (("groups", "--in", "-4", "--mid", "8", "--out", "8"), "M (--in) must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = clcdeploy(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_debug_shows_the_traceback():
    result = clcdeploy("--debug", "analyze", "clcnet_c")
    assert result.returncode != 0 and "Traceback" in result.stderr
