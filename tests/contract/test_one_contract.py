"""The contract is spelled once: no product module outside nas_core/rundir.py names the event log's file or
writes a file with its own temp-and-rename, and the generated parts of the docs equal what the code says."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from nas_core import contract_docs

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("nas_core", "backend", "worker", "deploy", "frontend", "bench")
CONTRACT = ROOT / "nas_core" / "rundir.py"
FOLDER_SWAPS: set[Path] = set()  # folders too are swapped by nas_core.rundir.replace_folder


def _sources():
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".js", ".sbatch", ".sh") and path != CONTRACT and "alembic" not in path.parts:
                yield path, path.read_text()


def test_no_module_but_the_contract_names_the_event_log_file():
    offenders = [str(p.relative_to(ROOT)) for p, text in _sources() if "events.jsonl" in text]
    assert offenders == [], f"use nas_core.rundir.RunDir(...).events instead of the literal in: {offenders}"


def test_no_module_but_the_contract_writes_with_its_own_temp_and_rename():
    rename = re.compile(r"\bos\.(replace|rename)\(|\.rename\(|\.replace\([^)]*\btmp\b")
    offenders = [str(p.relative_to(ROOT)) for p, text in _sources()
                 if p.suffix == ".py" and p not in FOLDER_SWAPS and rename.search(text)]
    assert offenders == [], f"use nas_core.rundir.write_atomic / write_json instead of a temp-and-rename in: {offenders}"


@pytest.mark.parametrize("doc", sorted(contract_docs.SECTIONS))
def test_the_generated_doc_sections_match_the_code(doc):
    text = (contract_docs.DOCS / doc).read_text()
    assert contract_docs.render(doc, text) == text, f"docs/{doc} is out of date: run python -m nas_core.contract_docs"
