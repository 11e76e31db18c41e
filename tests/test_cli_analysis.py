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
    # an upper bound (shared with export) instead of an allocation failure or torch's overflow TypeError
    (("analyze", "clcnet_tiny", "--input-size", "4000000"), "input size 4000000 is too large for clcnet_tiny: at most"),
    (("analyze", "clcnet_a", "--input-size", str(2 ** 63)), f"input size {2 ** 63} is too large for clcnet_a: at most"),
    (("analyze", "clcnet_a", "clcnet_b"), "clcdeploy analyze: error: unrecognized arguments: clcnet_b "
                                          "(see `clcdeploy analyze --help`)"),
    (("groups", "--in", "8", "--mid", "8", "--out", "8", "extra"), "(see `clcdeploy groups --help`)"),
    (("groups", "--in", "64", "--mid", "64", "--out", "128", "--g2", "3"), "g2 3 must divide both L"),
    (("groups", "--in", "-4", "--mid", "8", "--out", "8"), "M (--in) must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = clcdeploy(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_debug_shows_the_traceback():
    result = clcdeploy("--debug", "analyze", "clcnet_c")
    assert result.returncode != 0 and "Traceback" in result.stderr


def _models_rows(*args: str) -> dict[str, list[str]]:
    """`clcdeploy models` as a table read back: name -> cells."""
    result = clcdeploy("models", *args)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 5:
            rows[cells[0]] = cells
    return rows


def test_models_and_analyze_print_the_same_rounded_counts_and_the_papers_name():
    rows = _models_rows("--tiny")
    from clcdeploy.zoo import model_spec

    name, _input, macs, params, paper = rows["clcnet_tiny"]
    header = clcdeploy("analyze", "clcnet_tiny").stdout.splitlines()[0]
    assert f"{macs} mult-adds, {params} parameters" in header
    assert paper == model_spec("clcnet_tiny").paper_name and "seeds/" not in paper
    assert rows["clcnet_a"][4].startswith("clcNet (")


def test_analyze_json_names_each_layers_type_once():
    report = json.loads(clcdeploy("analyze", "channelnet_tiny", "--json").stdout)
    for record in report["layers"] + report["blocks"]:
        assert "type" in record and "kind" not in record


def test_channelwise_convolutions_are_one_row_with_their_real_output_shape():
    """ChannelNet's channel-wise convolutions run as a Conv2d over a (channels, pixels) view: the table shows the
    module (type ChannelWiseConv / ConvClassifier) with the shape it returns, not the view's."""
    report = json.loads(clcdeploy("analyze", "channelnet_tiny", "--json").stdout)
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert not any(name.endswith((".fusion.conv", ".channelwise.conv", "classifier.conv")) for name in layers)
    fusion = layers["blocks.6.layer2.fusion"]
    pointwise = layers["blocks.6.layer2.pointwise"]
    assert fusion["type"] == "ChannelWiseConv" and fusion["output_shape"] == pointwise["output_shape"]
    from clcdeploy.zoo import create_model

    model = create_model("channelnet_tiny")
    d_c = model.blocks[6].layer2.fusion.kernel_size
    channels, height, width = fusion["output_shape"]
    assert fusion["macs"] == d_c * channels * height * width  # the paper's d_c x n x d_f^2
    assert layers["classifier"]["type"] == "ConvClassifier" and layers["classifier"]["output_shape"] == [10]
    assert sum(layer["macs"] for layer in report["layers"]) == report["macs"]


def test_a_size_between_two_that_work_names_them_and_is_not_called_too_small():
    """sic_k takes 221 but not 230: a stride-2 block's paths round differently; the message names the nearest
    sizes that work, and they do."""
    from clcdeploy.analysis.input_size import check_input_size
    from clcdeploy.errors import ConfigurationError
    from clcdeploy.zoo import create_model
    import re
    import torch

    with torch.device("meta"):
        model = create_model("sic_k")
    with pytest.raises(ConfigurationError) as info:
        check_input_size(model, "sic_k", 230)
    message = str(info.value)
    assert "too small" not in message and "does not fit sic_k" in message
    below, above = map(int, re.search(r"sizes near it that work: (\d+) and (\d+)$", message).groups())
    assert below < 230 < above
    for size in (below, above):
        check_input_size(model, "sic_k", size)
    for size in (below + 1, above - 1):
        with pytest.raises(ConfigurationError):
            check_input_size(model, "sic_k", size)


def test_the_input_size_bound_is_in_the_help_and_shared_with_export():
    from clcdeploy.analysis.input_size import MAX_INPUT_SIZE, check_input_size
    from clcdeploy.errors import ConfigurationError
    from clcdeploy.zoo import create_model

    assert f"at most {MAX_INPUT_SIZE}" in clcdeploy("analyze", "--help").stdout
    with pytest.raises(ConfigurationError, match=f"at most {MAX_INPUT_SIZE}"):
        check_input_size(create_model("clcnet_tiny"), "clcnet_tiny", MAX_INPUT_SIZE + 1)


def test_a_large_accepted_size_is_answered_without_running_the_model():
    """Shapes come from the meta device: at the largest accepted size no real tensor is ever as large as one input
    image (the channel analysis runs for real, but at the model's own size)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    from clcdeploy.analysis.input_size import MAX_INPUT_SIZE
    from clcdeploy.analysis.summary import analyze_model

    class LargestRealTensor(TorchDispatchMode):
        """Every op torch dispatches: the largest tensor it takes or gives that is not on the meta device."""

        def __init__(self) -> None:
            super().__init__()
            self.numel, self.op = 0, None

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for value in tree_flatten((args, kwargs, out))[0]:
                if isinstance(value, torch.Tensor) and not value.is_meta and value.numel() > self.numel:
                    self.numel, self.op = value.numel(), func
            return out

    with LargestRealTensor() as largest:
        report = analyze_model("clcnet_a", MAX_INPUT_SIZE)
    assert report["input_size"] == MAX_INPUT_SIZE and report["macs"] > 0
    one_image = 3 * MAX_INPUT_SIZE * MAX_INPUT_SIZE
    assert 0 < largest.numel < one_image, f"{largest.op} handled a real tensor of {largest.numel} elements"


@pytest.mark.parametrize("args", [("analyze", "clcnet_tiny"), ("analyze", "clcnet_tiny", "--json"), ("models",),
                                  ("models", "--json"), ("groups", "--in", "8", "--mid", "8", "--out", "8")])
def test_a_reader_that_stops_early_ends_the_command_quietly_with_141(args):
    """As everywhere in the CLI (`| true` exits before clcdeploy writes): rich's own handling exited 1."""
    command = " ".join([sys.executable, "-m", "clcdeploy", *args])
    result = subprocess.run(["bash", "-c", f"{command} | true; echo ${{PIPESTATUS[0]}}"], capture_output=True,
                            text=True, timeout=300)
    assert result.stderr == "" and result.stdout.strip() == "141", result.stderr


def test_tables_written_to_a_file_or_pipe_are_never_cut():
    """Not a terminal: the full width, whatever it is (at rich's default 80 columns, channelnet_v1's layer names
    were cut, so `grep` missed them)."""
    result = clcdeploy("analyze", "channelnet_v1")
    assert "…" not in result.stdout
    import torch

    from clcdeploy.analysis.cost import count_costs
    from clcdeploy.zoo import create_model

    with torch.device("meta"):
        model = create_model("channelnet_v1")
    for layer in count_costs(model, 224).layers:  # every counted layer's full name
        if layer.macs or layer.params:
            assert f"│ {layer.name} " in result.stdout, layer.name
    assert "…" not in clcdeploy("models", "--tiny").stdout


def _in_terminal(columns: int, *args: str) -> str:
    """Run clcdeploy on a pseudo-terminal `columns` wide; its output without escape sequences."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "clcdeploy", *args], stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode())


def test_a_narrow_terminal_wraps_names_and_numbers_instead_of_cutting_them():
    text = _in_terminal(60, "analyze", "channelnet_tiny")
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 60
    from clcdeploy.analysis.cost import count_costs
    from clcdeploy.zoo import create_model

    for layer in count_costs(create_model("channelnet_tiny"), 32).layers:
        if layer.macs:
            assert f"{layer.macs:,}" in text, layer.name  # numbers stay on one line


def test_help_explains_the_columns_and_defaults():
    analyze = clcdeploy("analyze", "--help").stdout
    for term in ("CRF ", "FCRF ", "info field ", "channel receptive field", "information field"):
        assert term in analyze
    groups = clcdeploy("groups", "--help").stdout
    assert "(default: 9)" in groups and "g1*g2 <= L" in groups and "M/g1" in groups and "--g2" in groups


def test_groups_prints_the_channel_receptive_fields_and_the_fcrf_condition():
    text = clcdeploy("groups", "--in", "64", "--mid", "64", "--out", "128", "--g2", "2").stdout
    answer = json.loads(clcdeploy("groups", "--in", "64", "--mid", "64", "--out", "128", "--g2", "2", "--json").stdout)
    g1, g2 = answer["g1"], answer["g2"]
    assert g2 == 2 and answer["g2_fixed"] is True
    assert answer["igc_crf"] == 64 // g1 and answer["gc_crf"] == 64 // g2 and answer["fcrf"] is True
    assert f"IGC M/g1 = {64 // g1}" in text and f"{g1}*{g2} = {g1 * g2} <= 64" in text
