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


def test_an_etdump_that_cannot_be_written_is_refused_before_the_passes(runner_and_models, tmp_path):
    runner, folder, _ = runner_and_models
    dump = tmp_path / "missing-folder" / "d.etdp"
    done = _run(runner, "--model_path", str(folder / "plain.pte"), "--etdump_path", str(dump))
    assert done.returncode == 2 and "Iteration" not in done.stdout
    assert done.stderr == f"pte_runner: error: cannot write {dump}: give a path in a writable folder\n"
    assert list(tmp_path.iterdir()) == []


MODEL = ["--model_path", "a.pte"]
THREADS_RANGE = "is out of range: give 1 to 256 threads (the limit), or -1 for the runtime's default"


@pytest.mark.parametrize("args,message", [
    ([*MODEL, "--model_path", "b.pte", "--output_path", "o.bin"], "--output_path takes one"),
    ([*MODEL, "--model_path", "b.pte", "--etdump_path", "d.etdp"], "--etdump_path takes one"),
    ([*MODEL, "--planned_offset", "64"], "--planned_offset 64 is out of range: give a byte count in [0, 64)"),
    ([], "--model_path is required"),
    ([*MODEL, "--num_executions", "0"], "--num_executions 0 is out of range: give a whole number >= 1"),
    ([*MODEL, "--block", "0"], "--block 0 is out of range: give a whole number >= 1"),
    ([*MODEL, "--warmup=-1"], "--warmup -1 is out of range: give a whole number >= 0"),
    ([*MODEL, "--workspace_sharing", "3"], "--workspace_sharing 3 is out of range: give 0 (disabled), 1 (per"),
    # Whole integers only: atoi had run 3 passes for "3x" and called "abc" "must be >= 1".
    ([*MODEL, "--num_executions", "3x"], "--num_executions '3x' is not an integer: give a whole number >= 1"),
    ([*MODEL, "--num_executions", "abc"], "--num_executions 'abc' is not an integer"),
    ([*MODEL, "--num_executions", ""], "--num_executions '' is not an integer"),
    ([*MODEL, "--num_executions", "99999999999"], "--num_executions 99999999999 is out of range"),
    ([*MODEL, "--order_seed", "-1"], "--order_seed -1 is out of range"),
    ([*MODEL, "--order_seed", "7s"], "--order_seed '7s' is not an integer"),
    # --cpu_threads: 100000 had crashed (SIGSEGV), 20000 had been taken, -4 and abc had meant the default.
    ([*MODEL, "--cpu_threads", "100000"], f"--cpu_threads 100000 {THREADS_RANGE}"),
    ([*MODEL, "--cpu_threads", "20000"], f"--cpu_threads 20000 {THREADS_RANGE}"),
    ([*MODEL, "--cpu_threads", "257"], f"--cpu_threads 257 {THREADS_RANGE}"),
    ([*MODEL, "--cpu_threads", "-4"], f"--cpu_threads -4 {THREADS_RANGE}"),
    ([*MODEL, "--cpu_threads", "0"], f"--cpu_threads 0 {THREADS_RANGE}"),
    ([*MODEL, "--cpu_threads", "abc"], "--cpu_threads 'abc' is not an integer: give 1 to 256 threads"),
    ([*MODEL, "--input-shape", "1,3,8,8"],
     "unknown flag --input-shape (see --help for the flags; the input shapes come from the .pte)"),
    ([*MODEL, "--warmup"], "--warmup needs a value (see --help)"),
    (["a.pte"], "unexpected argument 'a.pte': give the model as --model_path a.pte"),
])
def test_bad_flags_exit_2_with_one_line(runner_and_models, args, message):
    done = _run(runner_and_models[0], *args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# Every flag pte_runner takes; the usage must list each with its default.
FLAGS = ("--model_path", "--method_name", "--num_executions", "--warmup", "--cpu_threads", "--block", "--order_seed",
         "--output_path", "--planned_offset", "--workspace_sharing", "--etdump_path")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_of_every_flag_and_exits_0(runner_and_models, flag):
    done = _run(runner_and_models[0], "--model_path", "a.pte", flag)  # anywhere on the line, before any check
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("usage: pte_runner --model_path P")
    # One entry per flag: its line and any continuation lines (indented further).
    entries = re.findall(r"^  (--\w+) +(.*(?:\n {5,}.*)*)", done.stdout, flags=re.MULTILINE)
    assert sorted(name for name, _ in entries) == sorted(FLAGS)
    for name, text in entries:
        assert "(default" in text or "(required)" in text, (name, text)
    assert "shapes and dtypes\ncome from the program itself" in done.stdout
    for name in FLAGS:  # the usage lists nothing the parser does not take
        known = _run(runner_and_models[0], "--model_path", "a.pte", name)
        assert known.returncode == 2 and f"{name} needs a value" in known.stderr, known.stderr


@pytest.mark.parametrize("threads", ["-1", "256"])
def test_cpu_threads_at_the_limit_and_the_default_run(runner_and_models, threads):
    runner, folder, _ = runner_and_models
    done = _run(runner, "--model_path", str(folder / "plain.pte"), f"--cpu_threads={threads}",
                "--num_executions", "2")
    assert done.returncode == 0, done.stderr
    assert "Model executed successfully 2 time(s)" in done.stdout


def test_too_many_executions_for_memory_is_one_line_not_a_crash(runner_and_models):
    """The timings are reserved up front; a count whose timings do not fit had ended in std::bad_alloc (abort)."""
    import resource

    runner, folder, _ = runner_and_models

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    done = subprocess.run([runner, "--model_path", str(folder / "plain.pte"), "--num_executions", "1000000000"],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_memory)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("pte_runner:")]
    assert errors == ["pte_runner: error: no memory to record 1000000000 timings per model: give a smaller "
                      "--num_executions"]
