"""The manifest of a prepared dataset and the rule for trusting one: only a directory whose manifest says it is
complete (written last, then the directory renamed into place) is ever read."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nas_core.data.readers import DataError
from nas_core.rundir import write_json

FORMAT = "nasforge-prepared/1"
MANIFEST = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, obj) -> None:
    write_json(path, obj, indent=1)


def load_manifest(root: str | Path, verify: bool = False) -> dict:
    """The manifest of a complete prepared dataset; `verify` re-hashes every tile. Raises DataError otherwise."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise DataError(f"{root}: no prepared dataset here; run `nasforge data prepare SPEC.yaml` first")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{root}: no {MANIFEST}; this directory is not a complete prepared dataset "
                        "(an interrupted run?); prepare it again") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: unreadable manifest ({exc}); prepare the dataset again") from None
    if manifest.get("format") != FORMAT or manifest.get("complete") is not True:
        raise DataError(f"{path}: not a complete {FORMAT} manifest; prepare the dataset again")
    if not manifest.get("tiles"):
        raise DataError(f"{path}: the dataset holds no tiles")
    if verify:
        for t in manifest["tiles"]:
            for key in ("image", "mask"):
                f = root / t[key]
                if not f.exists():
                    raise DataError(f"{f}: listed in the manifest but missing; prepare the dataset again")
                if sha256_file(f) != t["sha256"][key]:
                    raise DataError(f"{f}: content differs from the manifest's hash; prepare the dataset again")
    return manifest
