"""Small answers kept in the user's cache folder as JSON (`~/.cache/ascend-build/NAME.json`):
what an engine or a base image said, under a key that changes when they change. A cache that
cannot be read is empty; one that cannot be written is skipped; the newest `most` entries stay."""
import json
import os
from pathlib import Path
from typing import Any, Optional


class UserCache:
    def __init__(self, name: str, most: int):
        self.name, self.most = name, most

    @property
    def path(self) -> Path:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ascend-build" / f"{self.name}.json"

    def entries(self) -> dict:
        try:
            kept = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return kept if isinstance(kept, dict) else {}

    def get(self, key: str) -> Optional[Any]:
        return self.entries().get(key)

    def remember(self, key: str, value: Any) -> None:
        kept = {k: v for k, v in self.entries().items() if k != key}
        kept = dict(list(kept.items())[-(self.most - 1):] + [(key, value)])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(kept))
            os.replace(tmp, self.path)
        except OSError:
            pass
