"""Test-session settings. The suite checks numerics and structure, never timings; one torch thread per
process keeps the 2-core CI machine from thrashing when tests and their subprocesses run side by side."""

import torch

torch.set_num_threads(1)
