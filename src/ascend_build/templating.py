"""The one Jinja environment: every template of the package, named by its path in the package
(`render/templates/Dockerfile.j2`, `components/scripts/cann.sh.j2`, `templates/...`)."""
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(Path(__file__).parent), undefined=StrictUndefined,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
