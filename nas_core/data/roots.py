"""Data roots: a dataset path is accepted only inside one of the allowed folders (the API and the worker both ask).

The path is resolved first (symlinks, `..`), so a link or a climb cannot step outside. The refusal is one message
whatever the path is: it never says whether the path exists, so the check cannot be used to map the disk.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence


class OutsideDataRoots(ValueError):
    """A data path outside every allowed root; the message names the field and the roots, never the path."""


def resolve_roots(roots: Iterable[str | os.PathLike]) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in roots]


def outside_message(roots: Sequence[Path], field: str = "data.path") -> str:
    allowed = ", ".join(str(r) for r in roots) or "(none configured)"
    return f"{field}: must lie inside an allowed data root (NASFORGE_DATA_ROOTS): {allowed}"


def confine_data_path(path: str | os.PathLike, roots: Iterable[str | os.PathLike], base: str | os.PathLike,
                      field: str = "data.path") -> Path:
    """The resolved `path` (a relative one is taken from `base`, where it would be opened), or OutsideDataRoots.

    A root itself is allowed (a dataset may be the root folder); anything beside or above it is not.
    """
    allowed = resolve_roots(roots)
    raw = os.fspath(path)
    if "\x00" in raw or not raw.strip():
        raise OutsideDataRoots(outside_message(allowed, field))
    p = Path(raw).expanduser()
    try:
        resolved = (p if p.is_absolute() else Path(base) / p).resolve()
    except (OSError, RuntimeError):  # a link loop or an over-long name: refused like any other outsider
        raise OutsideDataRoots(outside_message(allowed, field)) from None
    if not any(resolved == r or r in resolved.parents for r in allowed):
        raise OutsideDataRoots(outside_message(allowed, field))
    return resolved


def find_in_roots(path: str | os.PathLike, roots: Iterable[str | os.PathLike], field: str = "data.path") -> Path:
    """`path` confined to the roots; a relative one names a folder inside a root (the API's caller does not know
    the server's working directory): the first root that holds it, else the first root's (a dataset not made yet)."""
    allowed = resolve_roots(roots)
    raw = os.fspath(path)
    base = allowed[0] if allowed else Path("/")
    if "\x00" not in raw and raw.strip() and not Path(raw).expanduser().is_absolute():
        base = next((r for r in allowed if (r / raw).exists()), base)
    return confine_data_path(raw, allowed, base, field)
