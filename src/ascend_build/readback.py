"""What verify and inspect read back from an image's labels. Anyone can build an image with any
label, so they are untrusted input: each label ascend-build uses is checked here by size and
grammar before a value is used, and a bad one is one ImageError naming the image, the label and
the fix. Labels the tool does not use are kept only to be shown (all together bounded in size)."""
import json
import re
from dataclasses import dataclass
from typing import Callable, Dict, List

from . import grammar
from .contract import SET_ENV_LABEL, label
from .errors import ConfigError, ImageError

BASE_NAME = "org.opencontainers.image.base.name"
MAX_LABEL = 64 << 10          # one label the tool uses
MAX_LABELS = 1 << 20          # every label of the image together
COMPONENT = re.compile(re.escape(label("")) + r"([a-z0-9][a-z0-9-]{0,62})\.(version|file|sha256)", re.ASCII)
SHA256 = re.compile(r"(?:[0-9a-f]{64})?", re.ASCII)
FIX = ("rebuild the image with `ascend-build build`; an image built by hand must not set this label "
       "(`docker image inspect IMAGE` shows its labels)")


@dataclass(frozen=True)
class ImageLabels:
    """The labels of an image built by ascend-build: `used` holds the checked labels the tool reads
    (its own and the base image's name), `shown` every label, only to be shown."""

    used: Dict[str, str]
    shown: Dict[str, str]
    set_env: List[str]
    stages: List[str]
    base: str


def _short(value: str) -> str:
    return grammar.text(value) if len(value) <= 256 else _fail("is longer than 256 characters")


def _optional(check: Callable[[str], str]) -> Callable[[str], str]:
    return lambda value: value and check(value)


def _stages(value: str) -> str:
    for name in filter(None, value.split(",")):
        grammar.stage_name(name)
    return value


def _sha256(value: str) -> str:
    return value if SHA256.fullmatch(value) else _fail("is not a sha256 digest (64 hex digits)")


def _json_lines(value: str) -> List[str]:
    """The set-env label: a JSON list of one-line shell lines."""
    try:
        lines = json.loads(value)
    except ValueError as err:
        raise ValueError(f"is not valid JSON ({err})") from None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ValueError("is not a JSON list of strings")
    for line in lines:
        grammar.free_text(line)
    return lines


def _user_ids(value: str) -> str:
    return value if re.fullmatch(r"[0-9]{1,10}:[0-9]{1,10}", value, re.ASCII) else _fail("is not UID:GID")


def _fail(reason: str):
    raise ValueError(reason)


CHECKS: Dict[str, Callable[[str], object]] = {
    label("target"): grammar.stage_name,
    label("stages"): _stages,
    label("install-path"): _optional(grammar.absolute_path),
    label("user"): _optional(grammar.user_name),
    label("user-ids"): _optional(_user_ids),
    label("chip"): _optional(grammar.chip),
    label("tool-version"): _short,
    label("cxx-abi"): _short,
    SET_ENV_LABEL: _json_lines,
    BASE_NAME: _optional(grammar.image_reference),
}
FIELDS: Dict[str, Callable[[str], object]] = {"version": _short, "file": grammar.file_name, "sha256": _sha256}


def _check(key: str, value: object, image: str) -> None:
    if not isinstance(value, str):
        raise ImageError(f"image {image}: label {key} is not text", fix=FIX)
    if len(value) > MAX_LABEL:
        raise ImageError(f"image {image}: label {key} is {len(value)} characters long, more than {MAX_LABEL}", fix=FIX)
    match = COMPONENT.fullmatch(key)
    try:
        (FIELDS[match.group(2)] if match else CHECKS[key])(value)
    except ValueError as err:
        reason = str(err) if str(err).startswith(("is ", "contains ")) else f"is not valid: {err}"
        raise ImageError(f"image {image}: label {key} {reason[:300]}", fix=FIX) from None


def read_labels(info: object, image: str) -> ImageLabels:
    """The checked labels of an inspected image; ImageError when ascend-build did not build it or a
    label it uses is malformed."""
    config = info.get("Config") if isinstance(info, dict) else None
    labels = (config.get("Labels") if isinstance(config, dict) else None) or {}
    if not isinstance(labels, dict):
        raise ImageError(f"image {image}: its labels are not a mapping", fix=FIX)
    size = sum(len(str(k)) + len(str(v)) for k, v in labels.items())
    if size > MAX_LABELS:
        raise ImageError(f"image {image}: its labels hold {size} characters, more than {MAX_LABELS}",
                         fix="rebuild it with fewer or shorter LABEL lines")
    if label("target") not in labels:
        raise ImageError(f"{image} was not built by ascend-build (no {label('target')} label)",
                         fix="verify an image made by `ascend-build build`")
    used = {k: v for k, v in labels.items() if k in CHECKS or COMPONENT.fullmatch(k)}
    for key, value in used.items():
        _check(key, value, image)
    return ImageLabels(used=used, shown=dict(labels), set_env=_json_lines(used.get(SET_ENV_LABEL, "[]")),
                       stages=[s for s in used.get(label("stages"), "").split(",") if s], base=used.get(BASE_NAME, ""))


def image_argument(image: str) -> str:
    """An image named on the command line, checked: a reference or an id, never an option."""
    try:
        return grammar.image_reference(image)
    except ValueError as err:
        raise ConfigError(str(err)[:300], fix="name the image as [REGISTRY/]NAME[:TAG][@DIGEST] or by its id") from None
