"""Package attributes loaded on first use, so that importing a package (the experiment schema, the web backend)
does not import torch through a name it never touches."""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """The module `__getattr__` for `package`: name -> its submodule (relative), imported and cached on first use."""

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
