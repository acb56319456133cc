"""`ascend-build inspect IMAGE`: components, sizes per stage and layers of an image built by the
tool, from its labels (checked by readback.py) and history."""
from typing import Dict, List

from .contract import TOOL_DIR, label
from .engines.base import Engine
from .readback import COMPONENT, image_argument, read_labels


def components(labels: Dict[str, str]) -> List[dict]:
    found: Dict[str, dict] = {}
    for key, value in labels.items():
        match = COMPONENT.fullmatch(key)
        if match:
            found.setdefault(match.group(1), {"name": match.group(1)})[match.group(2)] = value
    return list(found.values())


def stage_sizes(layers: List[dict], stages: List[str]) -> List[dict]:
    """Attribute each of the image's own layers (oldest first) to the stage that made it: a
    stage starts with the COPY of its script or its run-stage.sh RUN."""
    sizes = {name: 0 for name in stages}
    current = stages[0] if stages else "base"
    for layer in layers:
        for name in stages:
            if f"{TOOL_DIR}/install_{name}.sh" in layer["created_by"] or f"run-stage.sh {name} " in layer["created_by"]:
                current = name
        sizes[current] = sizes.get(current, 0) + layer["size_bytes"]
    return [{"name": name, "size_bytes": size} for name, size in sizes.items()]


def inspect_image(engine: Engine, image: str) -> dict:
    info = engine.inspect(image_argument(image))
    labels = read_labels(info, image)
    layers = list(reversed(engine.layers(image)))
    base = labels.base
    base_layers = engine.layers(base) if base and engine.image_exists(base) else []
    own = layers[len(base_layers):]
    return {
        "image": image,
        "image_id": info.get("Id", ""),
        "target": labels.used.get(label("target")),
        "size_bytes": int(info.get("Size", 0)),
        "base_image": base,
        "base_size_bytes": sum(layer["size_bytes"] for layer in base_layers),
        "components": components(labels.used),
        "stages": stage_sizes(own, labels.stages),
        "layers": own,
        "labels": labels.shown,
    }
