"""The base stage: OS packages, Python and pip settings, timezone, the runtime user, the
entrypoint and the login-shell environment."""
import shlex
from typing import List, Optional

from ..contract import ENTRYPOINT, PROFILE, TOOL_DIR
from . import Component, PlanInputs, StagePlan, data, fill, render_script


def os_family(base_image: str, configured: str = None) -> str:
    if configured:
        return configured
    name = base_image.lower().rsplit("/", 1)[-1]
    for family, info in data()["os_families"].items():
        if any(word in name for word in info["match"]):
            return family
    return "debian"


def system_setup(inputs: PlanInputs) -> List[str]:
    """Shell commands of the base stage's RUN, each a plain string."""
    family = data()["os_families"][inputs.os_family]
    wanted = [shlex.quote(p) for p in dict.fromkeys(family["packages"] + (["tzdata"] if inputs.spec.timezone != "UTC" else [])
                                                    + list(inputs.system_packages) + list(inputs.spec.system_packages))]
    # one query for them all (dpkg -s, rpm -q: non-zero when any is missing): 0.3 s less under QEMU than one each
    missing_check = "! " + family["has"].format(pkg=" ".join(wanted))
    commands = [f"if {missing_check}; then {family['install'].format(pkgs=' '.join(wanted))}; fi"]
    if inputs.spec.timezone != "UTC":
        zone = shlex.quote(inputs.spec.timezone)
        commands.append(f"ln -snf /usr/share/zoneinfo/{zone} /etc/localtime && echo {zone} > /etc/timezone")
    user = inputs.spec.user
    if user:
        name = shlex.quote(user.name)
        commands.append(
            f"(getent group {user.gid} >/dev/null || groupadd -g {user.gid} {name})"
            f" && (id -u {name} >/dev/null 2>&1 || useradd -m -u {user.uid} -g {user.gid} -s /bin/bash {name})"
        )
    commands.append(f"for rc in /etc/bash.bashrc /etc/bashrc; do if [ -f $rc ]; then echo '. {PROFILE}' >> $rc; fi; done")
    commands.append(f"chmod 0755 {ENTRYPOINT} {TOOL_DIR}/*.sh")
    return commands


def installs_test(setup: List[str]) -> Optional[str]:
    """The shell test of system_setup's package step (true: the base stage installs packages), or None."""
    first = setup[0] if setup else ""
    return first[3:first.index("; then ")] if first.startswith("if ") and "; then " in first else None


def profile_script(inputs: PlanInputs) -> str:
    entries = [(fill(f, P=inputs.install_path), args) for f, args in data()["profile_set_env"]]
    return render_script("profile.sh.j2", set_env=entries)


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    env = {
        "LANG": "C.UTF-8",
        "TZ": inputs.spec.timezone,
        "PIP_BREAK_SYSTEM_PACKAGES": "1",   # PEP 668 distributions (Debian 12, Ubuntu 24.04)
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }
    return StagePlan(name="base", parent=parent, env=env, setup=system_setup(inputs),
                     extra_files={"scripts/profile.sh": profile_script(inputs)})


COMPONENT = Component(stage="base", plan=plan)     # on the base image: the root of the graph
