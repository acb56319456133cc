"""The grammar of every value that reaches a Dockerfile or a script: file names, image references,
paths, keys, package and user names, URLs. Each check returns the value or raises ValueError
saying what is allowed; `spec.py` uses them as pydantic validators, `init` and `check` directly."""
import posixpath
import re
import unicodedata
from urllib.parse import urlsplit

def _re(pattern: str) -> "re.Pattern":
    return re.compile(pattern, re.ASCII)


FILE_NAME = _re(r"[A-Za-z0-9._+][A-Za-z0-9._+-]*")
FILE_NAME_RULE = "letters, digits and . _ + - only, not starting with -"
STAGE_NAME = _re(r"[a-z][a-z0-9_-]*")
ENV_KEY = _re(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL_KEY = _re(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
CHIP = _re(r"\d{3}[A-Za-z]?|[Aa]3")
PYTHON = _re(r"3\.\d{1,2}")
GLIBC = _re(r"2\.\d{1,3}")
TIMEZONE = _re(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}")
OS_PACKAGE = _re(r"[A-Za-z0-9][A-Za-z0-9._+-]*(?:=[A-Za-z0-9.+~:-]+)?")
USER_NAME = _re(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_DOMAIN_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:.]+\])"
HOST = _re(rf"{_HOST}(?::\d{{1,5}})?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = _re(
    rf"(?:(?P<host>{_HOST}(?::\d{{1,5}})?)/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}))?")
INSTALLER_OPTION = _re(r"--[A-Za-z][A-Za-z0-9_-]*(?:=[A-Za-z0-9._/:,+@%-]*)?")
URL_TEXT = _re(r"[A-Za-z0-9._~%:/@+=,-]+")
MAX_TEXT = 4096
_LINE_BREAKS = ("Zl", "Zp")


def control_chars(text: str, allowed: str = "") -> list:
    """The control characters (and Unicode line/paragraph separators) in `text`."""
    return [c for c in text if c not in allowed and (unicodedata.category(c) == "Cc"
                                                      or unicodedata.category(c) in _LINE_BREAKS)]


def text(value: str) -> str:
    """One line of text: no control characters (newline, tab, escape...)."""
    bad = control_chars(value)
    if bad:
        raise ValueError(f"contains the control character {bad[0]!r}: write it on one line, without control characters")
    if len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    return value


def free_text(value: str) -> str:
    """Any Unicode text (label and env values) on one line; a tab is allowed."""
    bad = control_chars(value, "\t")
    if bad:
        raise ValueError(f"contains the control character {bad[0]!r}: write it on one line, without control characters")
    return value


def script(value: str) -> str:
    """A shell script: lines and tabs, no other control characters (e.g. a carriage return)."""
    bad = control_chars(value, "\n\t")
    if bad:
        raise ValueError(f"contains the control character {bad[0]!r}: save it with plain LF line endings")
    return value


def _match(pattern: "re.Pattern", value: str, what: str, limit: int = 255) -> str:
    text(value)
    if len(value) > limit or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not {what}")
    return value


def file_name(value: str) -> str:
    return _match(FILE_NAME, value, f"a safe file name ({FILE_NAME_RULE})")


def relative_file(value: str) -> str:
    """A path inside the working directory, each part a safe file name: `app.py`, `models/a.bin`."""
    parts = value.split("/")
    if any(p in ("", ".", "..") or not FILE_NAME.fullmatch(p) for p in parts) or len(value) > 1024:
        raise ValueError(f"{value!r} is not a relative path of safe file names ({FILE_NAME_RULE}; "
                         "no leading /, no . or .. parts)")
    return value


def stage_name(value: str) -> str:
    return _match(STAGE_NAME, value, "a stage name (lower-case letters, digits, _ and -, starting with a letter)", 63)


def env_key(value: str) -> str:
    return _match(ENV_KEY, value, "an environment variable name (letters, digits and _, not starting with a digit)")


def label_key(value: str) -> str:
    return _match(LABEL_KEY, value, "a label key (lower-case reverse-DNS style: a-z, 0-9, . _ -, e.g. com.example.team)")


def chip(value: str) -> str:
    return _match(CHIP, value, "a chip name (310p, 910, 910b, A3, 950)", 8)


def timezone(value: str) -> str:
    parts_ok = all(p not in (".", "..") for p in value.split("/"))
    if not parts_ok:
        raise ValueError(f"{value!r} is not a time zone")
    return _match(TIMEZONE, value, "a tz database name (UTC or Area/City, e.g. Asia/Shanghai)", 64)


def os_package(value: str) -> str:
    return _match(OS_PACKAGE, value, "a Debian/RPM package name (letters, digits, . _ + -, optionally =VERSION)", 200)


def python_requirement(value: str) -> str:
    """One PEP 508 requirement by name (`ray`, `mooncake-transfer-engine-npu>=0.3`), no URL; as
    packaging writes it."""
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(value, str) or len(value) > 200 or control_chars(value):
        raise ValueError("expected a Python requirement such as ray or ray>=2.40 (one line, up to 200 characters)")
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"not a Python requirement (PEP 508): {exc}") from None
    if req.url:
        raise ValueError("a requirement by name, not a URL: put that wheel into the folder instead")
    return str(req)


def user_name(value: str) -> str:
    return _match(USER_NAME, value, "a POSIX user name (letters, digits, . _ -, starting with a letter or _, up to 32)")


def installer_option(value: str) -> str:
    """One option of a .run installer: `--name` or `--name=value` of plain characters; not
    --install-path (the install_path key sets it)."""
    _match(INSTALLER_OPTION, value, "an installer option --name or --name=value (letters, digits, _ - in the name; "
           "letters, digits and . _ / : , + @ % - in the value)", 512)
    if value.split("=", 1)[0] == "--install-path":
        raise ValueError("--install-path is set by the install_path key")
    return value


def host(value: str) -> str:
    return _match(HOST, value, "a host name or address, optionally with :PORT")


def image_reference(value: str) -> str:
    """An OCI image reference: [registry[:port]/]name[:tag][@sha256:digest], name in lower case."""
    return _match(IMAGE_REFERENCE, value, "an image reference ([registry[:port]/]name[:tag][@sha256:...], "
                  "the name in lower case)", 512)


def url(value: str) -> str:
    """An http(s) URL of plain characters (no quotes, spaces, ; $ ( ) ` or &)."""
    text(value)
    parts = urlsplit(value)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if (parts.scheme not in ("http", "https") or not URL_TEXT.fullmatch(value) or not HOST.fullmatch(netloc)
            or len(value) > 2048):
        raise ValueError(f"{value!r} is not an http(s) URL of letters, digits and - . _ ~ % : / @ + = ,")
    return value


def absolute_path(value: str) -> str:
    """An absolute, normalised path of safe file names: `/usr/local/Ascend`."""
    text(value)
    if (not value.startswith("/") or posixpath.normpath(value) != value or value == "/"
            or not all(FILE_NAME.fullmatch(p) for p in value.split("/")[1:]) or len(value) > 1024):
        raise ValueError(f"{value!r} is not an absolute, normalised path of safe file names "
                         f"({FILE_NAME_RULE}; no //, . or .. parts, no trailing /)")
    return value


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30}
MAX_SIZE = 4 << 30


def size(value: str, limit: int = MAX_SIZE) -> int:
    """'64MiB' -> 67108864 (plain numbers are bytes), at most `limit`."""
    match = re.fullmatch(r"([0-9]{1,12})([A-Za-z]{0,3})", value, re.ASCII)
    unit = match.group(2).lower() if match else None
    if unit not in _UNITS:
        raise ValueError(f"cannot read the size {value!r}: write a number with an optional unit, e.g. 512KiB or 64MiB")
    number = int(match.group(1)) * _UNITS[unit]
    if number > limit:
        raise ValueError(f"{value!r} is more than {limit >> 30} GiB")
    return number
