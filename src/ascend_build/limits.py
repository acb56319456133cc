"""Limits read from the environment (deadlines, speeds): each a positive number, checked here,
so that a bad value is one ConfigError naming the variable."""
from typing import Mapping


def positive(environ: Mapping[str, str], name: str, default: float) -> float:
    """`environ[name]` as a positive number, `default` when it is unset or empty."""
    from .errors import ConfigError

    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name}={text[:40]!r} is not a positive number", fix=f"unset it or set e.g. {name}={default:g}")
    return value
