"""Publishing a directory built aside: the one place in nas_core.data that renames folders into place.

A prepared dataset and its tile store are each written in a hidden sibling and renamed over their final name only
once complete, so a reader sees the old directory or the new one, never a mix (POSIX rename is atomic).
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def staging_dir(out: Path) -> Path:
    """A hidden sibling of `out` named after this process (a killed run's leftovers are recognisable)."""
    return out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def publish_dir(tmp: Path, out: Path) -> None:
    """Rename the complete `tmp` to `out`; an existing `out` is moved aside first and deleted after."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def clean_stale(out: Path) -> None:
    """Remove staging siblings of `out` left by runs that were killed (their process is gone)."""
    for p in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(p.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
