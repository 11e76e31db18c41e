"""Test-session settings. The suite checks numerics and structure, never timings; one torch thread per
process keeps the 2-core CI machine from thrashing when tests and their subprocesses run side by side."""

import pytest
import torch

from bench_fixtures import fused_models_dir, tiny_models_dir  # noqa: F401  (fixtures)
from clcdeploy.device.paths import cache_dir
from device_fixtures import virtual_device  # noqa: F401  (fixture)

# The session-scoped fixtures above are defined here, once for the whole suite: imported into each test module
# instead, each module had its own (the tiny models exported, the virtual device started, once per module).

torch.set_num_threads(1)


# Built once per machine and keyed by content: shared with other sessions and the user's own clcdeploy runs.
SHARED_CACHES = ("virtual-device", "native", "kernels")


@pytest.fixture(scope="session", autouse=True)
def own_locks_and_host_work_folder(tmp_path_factory):
    """This session's clcdeploy cache folder (`XDG_CACHE_HOME`, inherited by the commands tests run): its own
    locks and host bench work folder, so that another test session or a user's `clcdeploy bench` on this machine
    neither holds up its benches nor sees its files; the expensive caches are the machine's, through symlinks."""
    machine = cache_dir()
    base = tmp_path_factory.mktemp("xdg-cache")
    (base / "clcdeploy").mkdir()
    for name in SHARED_CACHES:
        (machine / name).mkdir(parents=True, exist_ok=True)
        (base / "clcdeploy" / name).symlink_to(machine / name, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(base))
        yield base
