"""Static ENV from the stages' set_env.sh files. A stage that sources some after it installs is
built once up to its install step; a throw-away container of that image sources them and the
difference of the environment becomes the stage's ENV. What was captured is kept in
`.ascend-build/set-env/`, keyed by everything the image up to that step is made of, so a rebuild
with the same inputs renders the ENV at once and runs one engine build."""
import hashlib
import json
import math
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

from . import capture
from .capture import RefusedValue, dockerfile_env, env_diff
from .components import StagePlan
from .delivery import Http
from .engines.base import SELF_STOP_MARGIN
from .errors import BuildError
from .plan import Plan
from .render import capture_prefix, dockerfile
from .statefiles import guarded, write_state

CACHE_DIR = "set-env"
Captured = Dict[str, Dict[str, str]]


def capture_script() -> str:
    """capture.py: sent to `python3 -` in the image, shipped as scripts/capture-env.py by export."""
    return Path(capture.__file__).read_text()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stage_key(prefix: str, files: Dict[str, str], base_id: str, arch: str) -> str:
    """The key of a stage's capture: the Dockerfile up to its install step, the context files that
    text copies, the base image's id and the arch."""
    used = {name: _sha256(text) for name, text in sorted(files.items()) if name != "Dockerfile" and name in prefix}
    return _sha256(json.dumps({"dockerfile": prefix, "files": used, "base": base_id, "platform": arch}, sort_keys=True))


def key_plan(plan: Plan) -> Plan:
    """The plan as an http build with the URL as a build argument: what capture keys are rendered
    from, so that one capture serves every delivery and engine (they install the same files) and
    `bake` finds what a `build` captured."""
    return replace(plan, settings=replace(plan.settings, delivery=Http(url_secret=False)))


def parse_capture(stage: StagePlan, output: str) -> Dict[str, str]:
    """The ENV of `stage` from the capture's output; BuildError when sourcing failed or a value
    cannot be an ENV."""
    try:
        found = json.loads(output.strip().splitlines()[-1])
        before, after = found.get("before"), found.get("after")
    except (IndexError, ValueError, AttributeError):
        found, before, after = {"error": output.strip()[-500:] or "no output"}, None, None
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise BuildError(f"stage {stage.name}: sourcing its set_env.sh files in the image failed: {found.get('error')}",
                         fix="check that the stage's installers leave the files `ascend-build plan` names after "
                             "`# after install: source`, and that the engine can run a container of the image")
    env = env_diff(before, after)
    try:
        dockerfile_env(env)
    except RefusedValue as err:
        raise BuildError(f"stage {stage.name}: {err} (sourcing {set_env_files(stage)}); nothing was stored",
                         fix="the set_env.sh files must export values an ENV line can hold: one line each, and "
                             "short enough for the engine's Dockerfile parser") from None
    return env


def set_env_files(stage: StagePlan) -> str:
    return ", ".join(step.shows for step in stage.set_env)


@dataclass(frozen=True)
class EnvStore:
    """Captured environments by key, one JSON file each."""

    root: Path

    def get(self, key: str) -> Optional[Dict[str, str]]:
        try:
            env = json.loads((self.root / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        return env if ok else None

    def put(self, key: str, env: Dict[str, str]) -> None:
        with guarded(self.root):
            self.root.mkdir(exist_ok=True)
        write_state(self.root / f"{key}.json", json.dumps(env))


def known_env(plan: Plan, files: Dict[str, str], base_id: str,
              store: EnvStore) -> Tuple[Captured, Optional[Tuple[StagePlan, Tuple[str, str], str]]]:
    """The stages' ENV known from the store, in stage order, and the first stage whose is not:
    (stage, what its capture builds (render.capture_prefix), its key), or None when all are known."""
    captured: Captured = {}
    canonical = key_plan(plan)
    for stage in plan.stages:
        if not stage.set_env:
            continue
        key = stage_key(dockerfile(canonical, captured=captured, upto=stage.name), files, base_id, plan.settings.arch)
        env = store.get(key)
        if env is None:
            return captured, (stage, capture_prefix(plan, captured, stage.name), key)
        captured[stage.name] = env
    return captured, None


def capture_in(engine, image: str, stage: StagePlan) -> Dict[str, str]:
    """Source the stage's set_env steps in a throw-away container of `image`: its ENV."""
    lines = [step.line for step in stage.set_env]
    seconds = math.ceil(engine.container_timeout) + SELF_STOP_MARGIN
    result: subprocess.CompletedProcess = engine.run_container(
        image, ["-c", capture.shell(lines, seconds)], entrypoint="bash", network="none", purpose="capture",
        step=f"set_env.sh of stage {stage.name} (sourcing {set_env_files(stage)})",
        fix="a set_env.sh must return when it is sourced: make it not wait for input or loop (source it by hand "
            "in a shell of the stage's image to see where it stops)")
    return parse_capture(stage, json.dumps(capture.shell_answer(result.returncode, result.stdout, result.stderr)))
