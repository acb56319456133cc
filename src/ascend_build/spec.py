"""BuildSpec: the model of ascend-build.yaml, its defaults and its JSON schema."""
import difflib
from pathlib import Path
from typing import Dict, List, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

CONFIG_NAME = "ascend-build.yaml"
STAGES = ("base", "cann", "pta", "mindie")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserSpec(Strict):
    """The non-root runtime user; its uid/gid must match the host driver's HwHiAiUser."""

    name: str = "HwHiAiUser"
    uid: int = 1000
    gid: int = 1000


class CustomStage(Strict):
    """A stage the config adds: model code, vLLM-Ascend and the like."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    parent: str
    files: List[str] = []
    script: str
    env: Dict[str, str] = {}


class Matrix(Strict):
    """Variants for `ascend-build bake`: every combination of the values given."""

    chip: List[str] = []
    arch: List[Literal["x86_64", "aarch64"]] = []
    python: List[str] = []


class BuildSpec(Strict):
    """Everything a build needs besides the packages; every key is optional."""

    base_image: str = Field("ubuntu:22.04", description="Image the base stage starts from.")
    target: str = Field("mindie", description="Last stage to build: base, cann, pta, mindie or a custom stage.")
    arch: Optional[Literal["x86_64", "aarch64"]] = Field(None, description="Build platform; default: this host.")
    chip: Optional[str] = Field(None, description="310p, 910, 910b, A3, 950; default: inferred from the packages.")
    python: Optional[str] = Field(None, pattern=r"^3\.\d+$", description="Python of the image, e.g. '3.11'; default: inferred from the wheels.")
    os_family: Optional[Literal["debian", "openeuler"]] = Field(None, description="Package manager family; default: from the base image name.")
    install_path: str = "/usr/local/Ascend"
    cxx_abi: Optional[Literal[0, 1]] = Field(None, description="C++ ABI of torch for ATB (0/1); default: from the MindIE/ATB file names, else 1.")
    user: Optional[UserSpec] = Field(default_factory=UserSpec, description="Runtime user; null builds a root-only image.")
    delivery: Literal["auto", "http", "mount", "copy"] = "auto"
    skip: List[str] = Field([], description="Stages to leave out; the next stage is re-parented.")
    pins: Dict[str, str] = Field({}, description="Slot -> file name, when several files fit one slot.")
    stages: List[CustomStage] = []
    system_packages: List[str] = Field([], description="Extra OS packages for the base stage.")
    pip_index_url: Optional[str] = Field(None, description="Take Python packages from this index instead of the working directory.")
    pip_trusted_host: Optional[str] = None
    timezone: str = "UTC"
    labels: Dict[str, str] = {}
    matrix: Optional[Matrix] = Field(None, description="Variants for `ascend-build bake` (chip x arch x python).")

    @field_validator("skip")
    @classmethod
    def _known_stages(cls, value: List[str]) -> List[str]:
        bad = [s for s in value if s not in STAGES[1:]]
        if bad:
            raise ValueError(f"cannot skip {bad}: only {list(STAGES[1:])} can be skipped")
        return value


NESTED = {"user": UserSpec, "stages": CustomStage, "matrix": Matrix}


def _explain(err: ValidationError, path: Path) -> ConfigError:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            loc = item["loc"]
            model = NESTED.get(str(loc[0]), BuildSpec) if len(loc) > 1 else BuildSpec
            close = difflib.get_close_matches(str(item["loc"][-1]), list(model.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown key {where!r}{hint}")
        else:
            lines.append(f"{where}: {item['msg']}")
    return ConfigError(f"{path}: " + "; ".join(lines), fix="see `ascend-build schema` for every key and its type")


def load_spec(workdir: Path, **overrides) -> BuildSpec:
    """Read ascend-build.yaml from `workdir` (defaults when absent) and apply CLI overrides
    (None values are ignored)."""
    path = Path(workdir) / CONFIG_NAME
    data = {}
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}", fix="fix the syntax at the line named above") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must be a mapping of keys to values", fix="see `ascend-build schema`")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BuildSpec.model_validate(data)
    except ValidationError as err:
        raise _explain(err, path) from None


def schema() -> dict:
    return BuildSpec.model_json_schema()
