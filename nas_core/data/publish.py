"""Publishing a directory built aside: staging names, the swap into place, and a killed build's leftovers.

A prepared dataset and its tile store are each written in a hidden sibling and renamed over their final name only
once complete, so a reader sees the old directory or the new one, never a mix (POSIX rename is atomic).
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from nas_core.rundir import replace_folder


def staging_dir(out: Path) -> Path:
    """A hidden sibling of `out` named after this process (a killed run's leftovers are recognisable)."""
    return out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def publish_dir(tmp: Path, out: Path) -> None:
    """Rename the complete `tmp` to `out` (the run directory contract's one folder swap)."""
    replace_folder(tmp, out)


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
