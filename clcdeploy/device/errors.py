"""Device-layer errors: each is one line saying what went wrong and what to do."""

from __future__ import annotations

from clcdeploy.errors import DeviceError


class UnknownDeviceError(DeviceError):
    """A serial that no reachable device has."""


class DeviceBusyError(DeviceError):
    """A USB device claimed by another process (usually a running stock adb server)."""


class AuthenticationError(DeviceError):
    """The device refused our key, or nobody accepted the "Allow USB debugging?" prompt in time."""


class ConnectionLostError(DeviceError):
    """The connection dropped (mid-transfer: names the file and how much arrived)."""


class StorageFullError(DeviceError):
    """The device has no space left for a pushed file."""


class CommandTimeoutError(DeviceError):
    """A shell command that did not finish within its timeout."""


class TransferError(DeviceError):
    """A push or pull whose result does not match (missing file, sha256 mismatch)."""


class VirtualDeviceError(DeviceError):
    """The virtual ARM64 device cannot be built, started or stopped."""
