"""The generated parts of docs/run-directory.md and docs/events.md, from the contract's own definitions.

`python -m nas_core.contract_docs` rewrites them in place between their `<!-- generated:NAME -->` markers; a test
fails when a doc and the code disagree, so the prose never drifts from what the code writes.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from nas_core.events import EVENT_KINDS, HEARTBEAT_S, MEANING, STALE_AFTER_S, StatusState
from nas_core.rundir import LAYOUT, STAGE_OUTPUT, STAGES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_directory_table() -> str:
    rows = ["| path | `RunDir` attribute | written by | what |", "|---|---|---|---|"]
    rows += [f"| `{rel}` | `.{name}` | {writer} | {what} |" for name, rel, writer, what in LAYOUT]
    done = ", ".join(f"{stage}: `{dict((n, r) for n, r, *_ in LAYOUT)[STAGE_OUTPUT[stage]]}`" for stage in STAGES)
    return "\n".join(rows) + f"\n\nA stage is done when its output exists ({done}; the search stage: its checkpoint at the last epoch)."


def event_names() -> str:
    from nas_core.search.event_schema import EVENT_SCHEMA

    envelope = {k: v for k, v in EVENT_SCHEMA.items() if k not in ("allOf", "$schema")}
    lines = ["| kind | meaning |", "|---|---|", *(f"| `{k}` | {MEANING[k]} |" for k in EVENT_KINDS), "",
             "| status `state` | meaning |", "|---|---|", *(f"| `{s}` | {MEANING[s]} |" for s in StatusState), "",
             f"A live search writes an event at least every {HEARTBEAT_S:.0f} s (`nas_core.events.HEARTBEAT_S`); the "
             f"worker calls a running run stale after {STALE_AFTER_S:.0f} s without one (`STALE_AFTER_S`, "
             "`NASFORGE_STALE_AFTER_S`).", "",
             "The envelope (`nas_core.events.Event`) as JSON Schema; `nas_core.search.event_schema.EVENT_SCHEMA` adds "
             "the payloads per kind:", "", "```json", json.dumps(envelope, indent=2), "```"]
    return "\n".join(lines)


SECTIONS = {"run-directory.md": {"layout": run_directory_table}, "events.md": {"names": event_names}}


def render(doc: str, text: str) -> str:
    """`text` with each generated section of `doc` replaced by what the code says now."""
    for name, make in SECTIONS[doc].items():
        begin, end = f"<!-- generated:{name} -->", f"<!-- end:{name} -->"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/{doc}: no {begin} ... {end} section to fill")
        text = pattern.sub(lambda _: f"{begin}\n{make()}\n{end}", text)
    return text


def main() -> int:
    for doc in SECTIONS:
        path = DOCS / doc
        path.write_text(render(doc, path.read_text()))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
