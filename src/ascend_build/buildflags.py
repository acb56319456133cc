"""The `build` options the no-change fast path answers: each one's spellings and default, keyed
by the CLI's parameter name. cli.py declares these options from this table and fastpath.py parses
`build ...` with it (a unit test checks that the two agree). Only the standard library here: the
fast path reads it before the CLI's libraries are imported."""

# name -> (spellings, default); None: not given (the command decides)
VALUES = {
    "workdir": (("-C", "--workdir"), "."),
    "target": (("--target",), None),
    "tag": (("-t", "--tag"), None),
    "engine": (("--engine",), "auto"),
    "docker_bin": (("--docker-bin",), None),
    "delivery": (("--delivery",), "auto"),
    "network": (("--network",), None),
    "host": (("--host",), None),
    "port": (("--port",), None),
    "pull": (("--pull",), "missing"),
    "base_image": (("--base-image",), None),
    "platform": (("--platform",), None),
    "report": (("--report",), None),
}

# name -> spellings of an on/off option, off unless given
FLAGS = {
    "json_out": ("--json",),
    "verbose": ("-v", "--verbose"),
    "timings": ("--timings",),
    "no_wait": ("--no-wait",),
}


def spellings(name: str) -> tuple:
    """How the command line spells option `name`, a value's or a flag's."""
    return VALUES[name][0] if name in VALUES else FLAGS[name]


def default(name: str):
    """The default of option `name` (a flag's: False)."""
    return VALUES[name][1] if name in VALUES else False
