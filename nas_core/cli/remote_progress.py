"""The bars `nasforge remote follow` draws from a run's events: one per stage, moved by its `progress` events
(docs/events.md); on a pipe (no terminal), one line per stage and epoch instead."""
from __future__ import annotations

from nas_core.events import EventKind


class StageBars:
    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), console=self.console, disable=not self.live)
        self.tasks: dict[str, int] = {}
        self.said: set[tuple[str, int]] = set()

    def __enter__(self) -> "StageBars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def _say(self, text: str) -> None:
        # Not rich markup: a message is the run's text, and "[...]" in it is data, not a style.
        self.progress.console.print(text, markup=False, highlight=False) if self.live else print(text, flush=True)

    def event(self, ev: dict) -> None:
        kind, p = ev.get("kind"), ev.get("payload") or {}
        if kind == EventKind.progress:
            stage = p.get("stage", "?")
            if stage not in self.tasks:
                self.tasks[stage] = self.progress.add_task(stage, total=1.0, info="")
            info = f"epoch {p.get('epoch', 0) + 1}/{p.get('epochs', '?')}"
            self.progress.update(self.tasks[stage], completed=float(p.get("fraction", 0.0)), info=info)
            if not self.live and (stage, p.get("epoch", 0)) not in self.said:
                self.said.add((stage, p.get("epoch", 0)))
                self._say(f"{stage} {info} ({100 * float(p.get('fraction', 0)):.0f}%)")
        elif kind == EventKind.status:
            where = f" {p['stage']}" if p.get("stage") else ""
            self._say(f"status {p.get('state')}{where}" + (f": {p['error']}" if p.get("error") else ""))
        elif kind == EventKind.log:
            self._say(str(p.get("message", p)))
        elif kind == EventKind.evaluation:
            self._say(evaluation_line(p))


def evaluation_line(p: dict) -> str:
    """One `evaluation` payload as a line: where it was measured, mIoU and the foreground classes' IoU."""
    pixel = p.get("pixel") or p  # the retrain stage nests its pixel scores; the evaluate stage does not
    parts = [f"evaluation ({p.get('stage', '?')}, {p.get('split', '?')} split)"]
    if isinstance(pixel.get("miou"), (int, float)):
        parts.append(f"mIoU {pixel['miou']:.3f}")
    iou = pixel.get("iou")
    if isinstance(iou, list) and len(iou) > 1:
        parts.append("foreground IoU " + ", ".join(f"{v:.3f}" for v in iou[1:] if isinstance(v, (int, float))))
    if p.get("pr_empty_reason"):
        parts.append(f"no PR curve: {p['pr_empty_reason']}")
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")
