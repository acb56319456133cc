"""The one Jinja environment: every template of the package, named by its path in the package
(`render/templates/Dockerfile.j2`, `components/scripts/cann.sh.j2`, `templates/...`).

Values are quoted by default: in a shell template (`*.sh.j2`) each `{{ value }}` is shlex-quoted,
in a Dockerfile template a value that is not a plain word is written as a JSON string. A fragment
the tool made itself (a shell snippet, pre-quoted ENV pairs) opts out with `|raw`."""
import json
import re
import shlex
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context

PLAIN = re.compile(r"[\w@%+=:,./${}-]*")   # written as is in a Dockerfile


class Raw(str):
    """A trusted fragment: interpolated as is."""


def raw(value) -> Raw:
    return Raw(value)


def shell_quote(value) -> str:
    return value if isinstance(value, Raw) else shlex.quote(str(value))


def dockerfile_quote(value) -> str:
    text = str(value)
    return text if isinstance(value, Raw) or PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


@pass_context
def _finalize(context, value):
    name = context.name or ""
    if name.endswith(".sh.j2"):
        return shell_quote(value)
    if name.endswith("Dockerfile.j2"):
        return dockerfile_quote(value)
    return value


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_finalize)
    env.filters["raw"] = raw
    return env
