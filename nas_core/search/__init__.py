"""Continuous architecture search: one bilevel loop (`BilevelSearch`) with interchangeable architecture updaters
(DARTS first and second order, PC-DARTS, GAEA), exact resume, and the run's stages search -> decode -> retrain ->
evaluate (`run_stages`). `nasforge search` (nas_core/cli/search.py) drives it."""
from nas_core.search.architect import (
    Architect, DartsArchitect, GaeaArchitect, PCDartsArchitect, build_architect, supernet_kind, warmup_epochs,
)
from nas_core.search.event_schema import EVENT_SCHEMA, validate_events
from nas_core.search.loop import BilevelSearch, SearchResult, build_search_supernet, search_loss
from nas_core.search.reporting import EventSink
from nas_core.search.stages import STAGES, run_stages

__all__ = [
    "Architect", "DartsArchitect", "PCDartsArchitect", "GaeaArchitect", "build_architect", "supernet_kind",
    "warmup_epochs", "BilevelSearch", "SearchResult", "build_search_supernet", "search_loss", "EventSink",
    "EVENT_SCHEMA", "validate_events", "STAGES", "run_stages",
]
