"""clcdeploy's native pte_runner on the host: models timed side by side in one process, the fused IGC kernel on
planned memory that is not cache-line aligned (as ExecuTorch's Module API allocates it), and the XNNPACK
workspace sharing mode."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import torch

from device_fixtures import pte_runner_input

from clcdeploy.bench.parsers import parse_pte_runner_models
from clcdeploy.kernels.fuse import ChannelsLast, FusedIGC2
from clcdeploy.zoo.layers import IGC

pytest.importorskip("executorch")


def _fused_block(channels: int = 64) -> torch.nn.Module:
    """conv -> fused IGC -> conv: the IGC reads and writes planned memory between two XNNPACK partitions,
    and 64 channels reach the kernel's vector blocks (not only its scalar channel tail)."""
    torch.manual_seed(3)
    igc = IGC(channels, channels, channels // 2).eval()
    igc.conv.bias = torch.nn.Parameter(torch.randn(channels))
    body = torch.nn.Sequential(torch.nn.Conv2d(3, channels, 1), FusedIGC2(igc), torch.nn.Conv2d(channels, 8, 1))
    return ChannelsLast(body.eval()).eval()


@pytest.fixture(scope="module")
def runner_and_models(tmp_path_factory):
    from clcdeploy.device.native import build_pte_runner
    from clcdeploy.export import executorch_format

    folder = tmp_path_factory.mktemp("runner")
    x = torch.from_numpy(pte_runner_input((1, 3, 9, 11)))
    fused = _fused_block()
    with torch.no_grad():
        y = fused(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    expected = y.permute(0, 2, 3, 1).reshape(-1).numpy()  # in memory order, as pte_runner writes it
    executorch_format.export(fused, x, folder / "fused.pte")
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    executorch_format.export(plain, x, folder / "plain.pte")
    return str(build_pte_runner("host", log=lambda _: None)), folder, expected


def _run(runner: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([runner, *args], capture_output=True, text=True, timeout=120)


def _output_line(text: str) -> str:
    return re.search(r"^Output 0: .*$", text, flags=re.MULTILINE).group(0)


def test_models_run_side_by_side_in_one_process(runner_and_models):
    runner, folder, _ = runner_and_models
    paths = [str(folder / "fused.pte"), str(folder / "plain.pte")]
    for block in ("1", "2"):  # pass by pass, and two passes per turn (the last turn has one)
        done = _run(runner, "--model_path", paths[0], "--model_path", paths[1], "--num_executions", "3",
                    "--warmup", "1", "--cpu_threads", "1", "--block", block)
        assert done.returncode == 0, done.stderr
        results = parse_pte_runner_models(done.stdout)
        assert list(results) == paths
        assert all(len(r.times_ms) == 3 and r.load_ms is not None for r in results.values())
    # Each model computes what it computes when run alone.
    sections = re.split(r"^== Model \d+ of \d+: .*$", done.stdout, flags=re.MULTILINE)[1:]
    for path, section in zip(paths, sections):
        alone = _run(runner, "--model_path", path, "--num_executions", "1")
        assert alone.returncode == 0, alone.stderr
        assert _output_line(section) == _output_line(alone.stdout)
        assert list(parse_pte_runner_models(alone.stdout)) == [""]


@pytest.mark.parametrize("mode", ["0", "1", "2"])
def test_each_xnnpack_workspace_sharing_mode_reaches_the_backend(runner_and_models, mode):
    """pte_runner reads the mode back from the backend (which ignores keys it does not know) and stops if it
    differs; the models compute the same in every mode."""
    runner, folder, expected = runner_and_models
    out = folder / f"fused_{mode}.bin"
    done = _run(runner, "--model_path", str(folder / "fused.pte"), "--workspace_sharing", mode,
                "--output_path", str(out), "--num_executions", "2")
    assert done.returncode == 0, done.stderr
    assert np.abs(np.frombuffer(out.read_bytes(), dtype=np.float32) - expected).max() < 1e-4


def test_order_seed_draws_a_new_model_order_every_turn(runner_and_models):
    runner, folder, _ = runner_and_models
    paths = [str(folder / "fused.pte"), str(folder / "plain.pte")]
    args = ["--model_path", paths[0], "--model_path", paths[1], "--num_executions", "8", "--cpu_threads", "1"]
    fixed, shuffled = _run(runner, *args), _run(runner, *args, "--order_seed", "7", "--block", "2")
    assert fixed.returncode == 0 and shuffled.returncode == 0, fixed.stderr + shuffled.stderr
    assert "Turn" not in fixed.stdout  # without a seed: the flags' order, as before
    turns = re.findall(r"^Turn (\d+) order: (.*)$", shuffled.stdout, flags=re.MULTILINE)
    assert [int(t) for t, _ in turns] == [1, 2, 3, 4]  # 8 passes, 2 per turn
    orders = [tuple(order.split()) for _, order in turns]
    assert all(sorted(o) == ["1", "2"] for o in orders) and len(set(orders)) == 2, orders
    # Every model keeps its own passes and outputs whatever order it ran in.
    results = parse_pte_runner_models(shuffled.stdout)
    assert list(results) == paths and all(len(r.times_ms) == 8 for r in results.values())
    sections = [re.split(r"^== Model \d+ of \d+: .*$", run.stdout, flags=re.MULTILINE)[1:] for run in (fixed, shuffled)]
    assert [_output_line(s) for s in sections[0]] == [_output_line(s) for s in sections[1]]


@pytest.mark.parametrize("offset", [16, 4])
def test_fused_kernel_on_misaligned_planned_memory(runner_and_models, tmp_path, offset):
    runner, folder, expected = runner_and_models
    outputs = {}
    for b in (0, offset):
        out = tmp_path / f"out{b}.bin"
        done = _run(runner, "--model_path", str(folder / "fused.pte"), "--planned_offset", str(b),
                    "--output_path", str(out), "--num_executions", "2")
        assert done.returncode == 0, done.stderr
        outputs[b] = out.read_bytes()
    assert outputs[0] == outputs[offset]  # same arithmetic wherever the tensors start
    got = np.frombuffer(outputs[offset], dtype=np.float32)
    assert got.size == expected.size and np.abs(got - expected).max() < 1e-4


def test_the_fused_kernel_uses_the_runtime_thread_pool(runner_and_models, tmp_path):
    """Built with ET_USE_THREADPOOL, the kernel calls ExecuTorch's parallel_for, not the header's serial
    fallback (which had kept it on one thread at any --cpu_threads), and 1, 2 and 3 threads agree exactly."""
    runner, folder, expected = runner_and_models
    undefined = subprocess.run(["nm", "-DC", "--undefined-only", runner], capture_output=True, text=True).stdout
    assert "executorch::extension::parallel_for(" in undefined
    outputs = []
    for threads in ("1", "2", "3"):
        out = tmp_path / f"threads{threads}.bin"
        done = _run(runner, "--model_path", str(folder / "fused.pte"), "--cpu_threads", threads,
                    "--output_path", str(out), "--num_executions", "2")
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    got = np.frombuffer(outputs[0], dtype=np.float32)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("args,message", [
    (["--model_path", "a.pte", "--model_path", "b.pte", "--output_path", "o.bin"], "--output_path takes one"),
    (["--model_path", "a.pte", "--planned_offset", "64"], "--planned_offset must be in"),
    ([], "--model_path is required"),
    (["--model_path", "a.pte", "--num_executions", "0"], "--num_executions and --block must be >= 1"),
    (["--model_path", "a.pte", "--block", "0"], "--num_executions and --block must be >= 1"),
    (["--model_path", "a.pte", "--workspace_sharing", "3"], "--workspace_sharing must be 0 (disabled), 1 (per"),
])
def test_bad_flags_exit_2_with_one_line(runner_and_models, args, message):
    done = _run(runner_and_models[0], *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
