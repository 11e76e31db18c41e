#!/usr/bin/env python
"""A formulation tried and dropped (BENCHMARKS.md section 3, ninth session): one IGC output half,
`DW(x_e; a) + DW(x_o; b)`, as two 3x3 depthwise convolutions and an add, against one 3x6 depthwise convolution
with stride (1, 2) over the pair-interleaved width (columns alternate between x_e and x_o pixels, which is what a
`[x_e | x_o]` channel order already is in NHWC memory). ExecuTorch/XNNPACK, one thread, interleaved passes.

    .venv/bin/python scripts/bench_wide_depthwise.py [--channels 32] [--size 56] [--runs 400]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clcdeploy.errors import print_usage_error
from clcdeploy.export.quiet import quiet_output


class TwoDepthwise(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.b = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x_even: torch.Tensor, x_odd: torch.Tensor) -> torch.Tensor:
        return self.a(x_even) + self.b(x_odd)


class WideDepthwise(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, (3, 6), stride=(1, 2), padding=(1, 2), groups=channels)

    def forward(self, interleaved: torch.Tensor) -> torch.Tensor:
        return self.conv(interleaved)


usage_error = functools.partial(print_usage_error, "bench_wide_depthwise")  # one line on stderr, exit code 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args(argv)
    if min(args.channels, args.size, args.runs) < 1:
        return usage_error("--channels, --size and --runs must be at least 1")

    c, s = args.channels, args.size
    x_even, x_odd = torch.randn(1, c, s, s), torch.randn(1, c, s, s)
    interleaved = torch.stack([x_even, x_odd], dim=-1).reshape(1, c, s, 2 * s)
    cases = {"two 3x3 depthwise + add": (TwoDepthwise(c).eval(), (x_even, x_odd)),
             "one 3x6 depthwise, stride (1, 2)": (WideDepthwise(c).eval(), (interleaved,))}
    methods = {}
    with tempfile.TemporaryDirectory() as folder:
        # torch.export, ExecuTorch and torchao print deprecation warnings and C++ log lines: not this benchmark's
        with quiet_output():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

            portable_lib._unsafe_reset_threadpool(1)  # before loading: XNNPACK keeps the pool it was created with
            for index, (name, (module, inputs)) in enumerate(cases.items()):
                program = to_edge_transform_and_lower(torch.export.export(module, inputs),
                                                      partitioner=[XnnpackPartitioner()]).to_executorch()
                path = Path(folder) / f"case{index}.pte"
                path.write_bytes(program.buffer)
                methods[name] = (Runtime.get().load_program(str(path)).load_method("forward"), list(inputs))
        times: dict[str, list[float]] = {name: [] for name in methods}
        rng = np.random.default_rng(0)
        for _ in range(args.runs):
            for name in rng.permutation(list(methods)):
                method, inputs = methods[name]
                start = time.perf_counter()
                method.execute(inputs)
                times[name].append(time.perf_counter() - start)
    for name, measured in times.items():
        print(f"{name}: {np.median(measured[args.runs // 8:]) * 1e6:.1f} us (median, 1 thread, {c} channels, "
              f"{s}x{s})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
