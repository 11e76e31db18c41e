"""The ADB key pair: the stock client's `~/.android/adbkey` (created in the same format if missing)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from clcdeploy.device.errors import AuthenticationError
from clcdeploy.device.paths import adb_key_path


def ensure_adb_key(path: str | os.PathLike | None = None) -> Path:
    """Return the private key path, creating `adbkey` + `adbkey.pub` with adb-shell's keygen if absent."""
    key = Path(path) if path else adb_key_path()
    if key.exists() and key.with_name(key.name + ".pub").exists():
        return key
    from adb_shell.auth.keygen import keygen

    key.parent.mkdir(parents=True, exist_ok=True)
    try:
        keygen(str(key))
        os.chmod(key, 0o600)
    except OSError as exc:
        raise AuthenticationError(f"cannot create the ADB key {key}: {exc.strerror}") from exc
    print(f"created ADB key {key} (the device will ask to trust it once)", file=sys.stderr)
    return key


def load_signer(path: str | os.PathLike | None = None):
    """A PythonRSASigner for the key pair (PKCS#8 PEM private key, Android-format .pub)."""
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    key = ensure_adb_key(path)
    try:
        return PythonRSASigner.FromRSAKeyPath(str(key))
    except Exception as exc:  # rsa/pyasn1 raise assorted types for a bad file
        raise AuthenticationError(f"cannot read the ADB key {key}: {exc}; move it away to create a new one") from exc
