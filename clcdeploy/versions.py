"""Installed package versions, as recorded in export manifests and benchmark results."""

from __future__ import annotations

from importlib import metadata


def package_versions(names: tuple[str, ...], *, missing: str | None = None) -> dict[str, str]:
    """Version of each installed package in `names`; a missing one maps to `missing`, or is left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                versions[name] = missing
    return versions
