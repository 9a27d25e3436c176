"""The orchestrator's checkpoint: which trials were issued and which finished, so a restarted search reuses
every finished trial and redoes only the unfinished ones. Written atomically (`nas_core.rundir.write_json`)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas_core.rundir import read_json, write_json

VERSION = 1


class Checkpoint:
    """`issued` maps trial number to what varies per trial (attempt, genotype, seed; the rest is the job's);
    `finished` maps it to its final result, in finishing order. Changes are kept until `save()`."""

    def __init__(self, path: str | os.PathLike, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.issued: dict[int, dict[str, Any]] = {}
        self.finished: dict[int, dict[str, Any]] = {}
        self.resumes = 0
        self.dirty = False

    @classmethod
    def open(cls, path: str | os.PathLike, fingerprint: str) -> "Checkpoint":
        """Load `path` if it exists (a resume) or start empty; a checkpoint of another search is an error."""
        ckpt = cls(path, fingerprint)
        try:
            data = read_json(ckpt.path)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{ckpt.path}: unreadable checkpoint ({exc}); delete it to start the search over") from None
        if data is None:
            return ckpt
        if data.get("version") != VERSION or data.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{ckpt.path}: this checkpoint belongs to a different search (its settings changed); "
                "use a new work directory or delete the checkpoint to start over"
            )
        ckpt.issued = {int(k): v for k, v in data["issued"].items()}
        ckpt.finished = {int(k): v for k, v in data["finished"]}
        ckpt.resumes = int(data.get("resumes", 0)) + 1
        return ckpt

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        return [spec for n, spec in sorted(self.issued.items()) if n not in self.finished]

    def issue(self, spec: dict[str, Any]) -> None:
        self.issued[spec["trial"]] = {k: spec[k] for k in ("trial", "attempt", "genotype", "seed", "stage") if k in spec}
        self.dirty = True

    def finish(self, result: dict[str, Any]) -> None:
        self.finished[result["trial"]] = result
        self.dirty = True

    def save(self) -> None:
        data = {"version": VERSION, "fingerprint": self.fingerprint, "resumes": self.resumes,
                "issued": {str(k): v for k, v in self.issued.items()},
                "finished": [[k, v] for k, v in self.finished.items()]}
        write_json(self.path, data, indent=None)
        self.dirty = False
