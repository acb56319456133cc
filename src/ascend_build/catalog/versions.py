"""Ascend version ordering: `8.0.RC2 < 8.0.RC3 < 8.0.0 < 8.5.0`, `9.0.0-beta.1 < 9.0.0`,
`8.0.RC3.alpha003 < 8.0.RC3`, `2.0.T3` (a test build), `2.1.0.post13`, `2.1.0+cpu`.

The key agrees with PEP 440 (`packaging.version.Version`) on every version PEP 440 can spell;
it extends it where Ascend names are not PEP 440: `T<n>` builds (ordered like `.dev<n>`: before
alpha), a pre-release of a release candidate (`8.0.RC3.alpha003`), and a sub-number after a
release candidate (`25.0.rc1.1`, driver versions).

`RC` releases are published releases in Ascend's scheme, so `is_prerelease` is true only for
`T`, `dev`, `alpha` and `beta` builds.
"""
import re
from typing import Optional, Tuple

_KIND_RANK = {"t": 0, "dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2}
_RC_RANK = 3
_FINAL_RANK = 4
_PRE = r"(?:[.-]?(?P<{k}>t|dev|alpha|beta|a|b)[.-]?(?P<{k}_n>\d+)?)"
_PATTERN = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[.-]?(?P<rc>rc|c)[.-]?(?P<rc_n>\d+)?(?:\.(?P<rc_sub>\d+))?)?"
    + _PRE.format(k="pre") +
    r"?(?:(?:[.-]?post[.-]?|-)(?P<post>\d+))?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[._-][a-z0-9]+)*))?$",
    re.IGNORECASE,
)

VersionKey = Tuple[tuple, tuple, int, tuple]


def _local_key(local: Optional[str]) -> tuple:
    if not local:
        return ()
    parts = re.split(r"[._-]", local.lower())
    return tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts)


def version_key(version: str) -> VersionKey:
    """A sort key for an Ascend or PEP 440 version; ValueError when it is neither."""
    match = _PATTERN.match(version.strip())
    if not match:
        raise ValueError(f"not a version: {version!r}")
    release = tuple(int(p) for p in match["release"].split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre_kind = match["pre"]
    pre_part = (_KIND_RANK[pre_kind.lower()], int(match["pre_n"] or 0)) if pre_kind else (_FINAL_RANK,)
    if match["rc"]:
        rc_sub = (int(match["rc_sub"]),) if match["rc_sub"] is not None else ()
        if rc_sub and pre_kind:
            raise ValueError(f"not a version: {version!r}")
        stage: tuple = (_RC_RANK, int(match["rc_n"] or 0)) + pre_part + rc_sub
    elif pre_kind:
        stage = pre_part + (_FINAL_RANK,)
    else:
        stage = (_FINAL_RANK,)
    post = int(match["post"]) if match["post"] is not None else -1
    return release, stage, post, _local_key(match["local"])


def parse_version(version: str) -> Optional[VersionKey]:
    """`version_key`, or None when `version` is not a version."""
    try:
        return version_key(version)
    except ValueError:
        return None


def is_prerelease(version: str) -> bool:
    """True for T/dev/alpha/beta builds (not for RC releases, which Ascend publishes)."""
    match = _PATTERN.match(version.strip())
    return bool(match and match["pre"])


def same_version(a: str, b: str) -> bool:
    """Equal as versions (`8.0.RC2` == `8.0.rc2`, `2.1` == `2.1.0`)."""
    key_a, key_b = parse_version(a), parse_version(b)
    return key_a is not None and key_a == key_b


def release_of(version: str) -> Optional[tuple]:
    """The release numbers without trailing zeros: `2.1.0.post13` and `2.1.0+cpu` -> (2, 1)."""
    key = parse_version(version)
    return key[0] if key else None


def base_release(version: str) -> str:
    """The X.Y.Z part of a version as written: `2.1.0.post13` -> `2.1.0`."""
    match = _PATTERN.match(version.strip())
    return match["release"] if match else version
