"""The errors of reads and writes (mapped to 404, 409 and 413 by the API) and the JSON-safety check."""
from __future__ import annotations

import math
from typing import Any


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class TooLarge(ValueError):
    """A payload over the configured limit (413 at the API)."""


def check_json_safe(obj: Any, where: str) -> None:
    """Refuse what JSON columns or PostgreSQL cannot hold (NaN, infinities, NUL characters), naming the path."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: must be a finite number")
    if isinstance(obj, str) and "\x00" in obj:
        raise ValueError(f"{where}: must not contain NUL characters")
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) >= 2**63:
        raise ValueError(f"{where}: integer out of range")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_json_safe(k, f"{where}.{k!s}")
            check_json_safe(v, f"{where}.{k!s}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_json_safe(v, f"{where}.{i}")
