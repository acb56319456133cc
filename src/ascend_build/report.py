"""The build report: what was built, how big, how long, from which files."""
from typing import Dict, List

from rich.table import Table

from .engines.base import StageEvent
from .plan import Plan
from .server import Transfer
from .units import human_bytes


def build_report(plan: Plan, engine: str, tag: str, image: dict, base: dict, layers: List[dict], ctx_bytes: int,
                 stage_events: Dict[str, StageEvent], served: List[Transfer], seconds: float, log: str) -> dict:
    """The report from what the engine said: the inspected image and base image, the layers."""
    stages = []
    for stage in plan.stages:
        event = stage_events.get(stage.name)
        stages.append({"name": stage.name, "status": event.status if event else "cached",
                       "seconds": round(event.seconds, 2) if event else 0.0})
    return {
        "image": tag,
        "image_id": image.get("Id", ""),
        "target": plan.target,
        "engine": engine,
        "delivery": plan.delivery.name,
        "base_image": plan.spec.base_image,
        "base_image_id": base.get("Id", ""),
        "size_bytes": int(image.get("Size", 0)),
        "base_size_bytes": int(base.get("Size", 0)),
        "context_bytes": ctx_bytes,
        "duration_seconds": round(seconds, 2),
        "stages": stages,
        "components": [{"name": p.slot, "version": p.version, "file": p.file, "sha256": p.sha256}
                       for p in plan.selection.selected()],
        "layers": layers,
        "served": [{"file": t.file, "bytes": t.bytes, "seconds": round(t.seconds, 3), "complete": t.complete}
                   for t in served],
        "log": log,
        "emulation": emulation(plan, stage_events),
    }


def emulation(plan: Plan, stage_events: Dict[str, StageEvent]):
    """A build for another arch: per stage the seconds it was built under QEMU, and for those whose
    wheels were installed natively the seconds of that helper stage, and whether its installers had the
    host's byte tools (None: a build for this host)."""
    if plan.settings.platform is None:
        return None
    native = plan.native

    def seconds(name: str) -> float:
        event = stage_events.get(name)
        return round(event.seconds, 2) if event and event.status == "built" else 0.0

    stages = {}
    for stage in plan.stages:
        stages[stage.name] = {"emulated_seconds": seconds(stage.name),
                              "native_tools": native is not None and stage.name in native.tools}
        if native is not None and native.wheels(stage.name):
            stages[stage.name].update(native_seconds=seconds(native.helper(stage.name)), native_wheels=len(native.wheels(stage.name)))
    return {"platform": plan.settings.platform, "native_image": native.image if native else None, "stages": stages}


def summary_table(report: dict) -> Table:
    table = Table(title=f"{report['image']}  ({human_bytes(report['size_bytes'])}, base {human_bytes(report['base_size_bytes'])})",
                  title_justify="left")
    for column in ("stage", "status", "seconds"):
        table.add_column(column)
    for stage in report["stages"]:
        table.add_row(stage["name"], stage["status"], f"{stage['seconds']:.1f}")
    table.caption = (f"{report['engine']} engine, {report['delivery']} delivery, "
                     f"{human_bytes(report['context_bytes'])} context, {report['duration_seconds']:.1f} s; log: {report['log']}")
    table.caption_justify = "left"
    return table


def timings_table(report: dict) -> Table:
    """`build --timings`: the seconds of each phase of this run."""
    table = Table(title="where the time went", title_justify="left")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for phase, seconds in report["timings"].items():
        table.add_row(phase, f"{seconds:.3f}")
    table.add_row("total", f"{sum(report['timings'].values()):.3f}")
    for name, stage in ((report.get("emulation") or {}).get("stages") or {}).items():
        if stage["emulated_seconds"] or stage.get("native_seconds"):
            tools = "; its installers' byte tools on this CPU" if stage.get("native_tools") else ""
            table.add_row(f"  stage {name} under QEMU ({report['emulation']['platform']}{tools})", f"{stage['emulated_seconds']:.3f}")
        if stage.get("native_seconds"):
            table.add_row(f"  stage {name}'s {stage['native_wheels']} wheels on this CPU", f"{stage['native_seconds']:.3f}")
    return table
