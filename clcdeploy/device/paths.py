"""Where the device layer keeps its caches (XDG_CACHE_HOME respected) and the user's ADB key."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/clcdeploy` (default `~/.cache/clcdeploy`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clcdeploy"


def virtual_device_dir() -> Path:
    """Rootfs, wheels, pidfiles and logs of the virtual ARM64 device."""
    return cache_dir() / "virtual-device"


def adb_key_path() -> Path:
    """The stock adb client's private key (`$ANDROID_USER_HOME` or `~/.android`)."""
    home = os.environ.get("ANDROID_USER_HOME") or os.path.join(os.path.expanduser("~"), ".android")
    return Path(home) / "adbkey"
