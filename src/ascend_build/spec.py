"""BuildSpec: the model of ascend-build.yaml, its defaults and its JSON schema. Every value is
checked by its type (grammar.py): nothing that is not a plain image reference, path, key or name
reaches a Dockerfile or a script."""
import difflib
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import grammar
from .errors import ConfigError

CONFIG_NAME = "ascend-build.yaml"
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 16
MAX_NODES = 100_000

Text = Annotated[str, AfterValidator(grammar.text)]
FreeText = Annotated[str, AfterValidator(grammar.free_text)]
Script = Annotated[str, AfterValidator(grammar.script)]
StageName = Annotated[str, AfterValidator(grammar.stage_name)]
RelativeFile = Annotated[str, AfterValidator(grammar.relative_file)]
EnvKey = Annotated[str, AfterValidator(grammar.env_key)]
LabelKey = Annotated[str, AfterValidator(grammar.label_key)]
Chip = Annotated[str, AfterValidator(grammar.chip)]
Python = Annotated[str, Field(pattern=r"^3\.[0-9]{1,2}$")]
ImageReference = Annotated[str, AfterValidator(grammar.image_reference)]
AbsolutePath = Annotated[str, AfterValidator(grammar.absolute_path)]
OsPackage = Annotated[str, AfterValidator(grammar.os_package)]
PythonRequirement = Annotated[str, AfterValidator(grammar.python_requirement)]
UserName = Annotated[str, AfterValidator(grammar.user_name)]
Url = Annotated[str, AfterValidator(grammar.url)]
InstallerOption = Annotated[str, AfterValidator(grammar.installer_option),
                            Field(json_schema_extra={"pattern": f"^{grammar.INSTALLER_OPTION.pattern}$"})]
Host = Annotated[str, AfterValidator(grammar.host)]
Timezone = Annotated[str, AfterValidator(grammar.timezone)]
Id = Annotated[int, Field(ge=0, le=4294967294)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserSpec(Strict):
    """The non-root runtime user; its uid/gid must match the host driver's HwHiAiUser."""

    name: UserName = "HwHiAiUser"
    uid: Id = 1000
    gid: Id = 1000


class CustomStage(Strict):
    """A stage the config adds: model code, vLLM-Ascend and the like."""

    name: StageName
    parent: StageName
    files: List[RelativeFile] = []
    script: Script
    env: Dict[EnvKey, FreeText] = {}


class Matrix(Strict):
    """Variants for `ascend-build bake`: every combination of the values given."""

    chip: List[Chip] = []
    arch: List[Literal["x86_64", "aarch64"]] = []
    python: List[Python] = []


class BuildSpec(Strict):
    """Everything a build needs besides the packages; every key is optional."""

    base_image: ImageReference = Field("ubuntu:22.04", description="Image the base stage starts from.")
    base_images: Dict[Literal["x86_64", "aarch64"], ImageReference] = Field(
        {}, description="Base image per build arch (x86_64, aarch64); --base-image overrides, base_image is the fallback.")
    target: StageName = Field("mindie", description="Last stage to build: a built-in stage (base, cann, pta, mindie...) or a custom stage.")
    arch: Optional[Literal["x86_64", "aarch64"]] = Field(None, description="Build platform; default: this host.")
    chip: Optional[Chip] = Field(None, description="310p, 910, 910b, A3, 950; default: inferred from the packages.")
    python: Optional[Python] = Field(None, description="Python of the image, e.g. '3.11'; default: inferred from the wheels.")
    os_family: Optional[Literal["debian", "openeuler"]] = Field(None, description="Package manager family; default: from the base image name.")
    install_path: AbsolutePath = "/usr/local/Ascend"
    cann: Optional[Literal["toolkit", "nnae", "nnrt"]] = Field(None, description="CANN form: toolkit, nnae (training engine) or nnrt (inference runtime); default: from the files. For 8.5+ nnrt is the toolkit installed with --whitelist=nnrt.")
    install_options: Dict[Literal["toolkit", "kernels", "nnal", "mindie"], List[InstallerOption]] = Field(
        {}, description="More options per .run installer (toolkit, kernels, nnal, mindie), e.g. {nnal: [--torch_atb]}; each --name or --name=value.")
    cxx_abi: Optional[Literal[0, 1]] = Field(None, description="C++ ABI of torch for ATB (0/1); default: read from the torch wheel, else from the MindIE/ATB file names, else 1.")
    user: Optional[UserSpec] = Field(default_factory=UserSpec, description="Runtime user; null builds a root-only image.")
    delivery: Literal["auto", "http", "mount", "copy"] = "auto"
    skip: List[StageName] = Field([], description="Built-in stages to leave out; a stage on one builds on its parent instead.")
    pins: Dict[Text, RelativeFile] = Field({}, description="Slot -> file name, when several files fit one slot.")
    trusted_roots: List[RelativeFile] = Field([], description="PEM root certificates (paths in the working directory) trusted for signed zips, besides Huawei's.")
    stages: List[CustomStage] = []
    system_packages: List[OsPackage] = Field([], description="Extra OS packages for the base stage.")
    python_packages: Dict[StageName, List[PythonRequirement]] = Field(
        {}, description="More Python packages a stage installs, by requirement, e.g. {vllm: [ray, "
        "mooncake-transfer-engine-npu]}: check resolves them, fetch downloads them for the target.")
    pip_index_url: Optional[Url] = Field(None, description="Take Python packages from this index instead of the working directory.")
    pip_trusted_host: Optional[Host] = None
    native_install: Literal["auto", "off"] = Field(
        "auto", description="auto: a build for another arch (QEMU) with BuildKit or podman installs the wheels of the "
        "stages that pip-install them (cann's tools, pta, vllm) on the build host's CPU in a helper stage and copies the "
        "installed tree in; off: everything installs under emulation. ASCEND_BUILD_NATIVE_INSTALL=off|auto overrides it.")
    native_image: Optional[ImageReference] = Field(
        None, description="The helper stage's image: one for the build host's arch with python3 (the image's X.Y) and "
        "pip; default: base_images' entry for the host's arch, else the base image's name without its arch word "
        "(e.g. NAME:bookworm for NAME:bookworm-arm64), else python:X.Y-slim or python:X.Y, when in the store.")
    timezone: Timezone = "UTC"
    labels: Dict[LabelKey, FreeText] = {}
    matrix: Optional[Matrix] = Field(None, description="Variants for `ascend-build bake` (chip x arch x python).")

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, value: List[CustomStage]) -> List[CustomStage]:
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"custom stage {twice[0]!r} is defined more than once: give each stage its own name")
        return value


NESTED = {"user": UserSpec, "stages": CustomStage, "matrix": Matrix}


def _explain(err: ValidationError, path: Path, overrides: Dict[str, Any]) -> ConfigError:
    lines = []
    for item in err.errors():
        loc = item["loc"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if loc and loc[0] in overrides:
            where = f"--{str(loc[0]).replace('_', '-')}"
        if item["type"] == "extra_forbidden":
            model = NESTED.get(str(loc[0]), BuildSpec) if len(loc) > 1 else BuildSpec
            close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown key {where!r}{hint}")
        else:
            lines.append(f"{where}: {item['msg'].replace('Value error, ', '')}")
    return ConfigError(f"{path}: " + "; ".join(lines), fix="see `ascend-build schema` for every key and its type")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue                      # `<<: *base` keys may be given again
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue                      # unhashable: the base class says so
                if first != key_node.start_mark.line + 1:
                    raise ConfigError(f"key {key!r} appears twice (lines {first} and {key_node.start_mark.line + 1})",
                                      fix="keep one of them")
        return super().construct_mapping(node, deep)


class _TooLarge(Exception):
    pass


def _check_size(data: Any, depth: int = 0, count: List[int] = None) -> None:
    """Refuse data nested deeper than MAX_DEPTH or with more than MAX_NODES values (aliases
    repeated over and over, or a structure that contains itself)."""
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise _TooLarge
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for _key, value in children:
        _check_size(value, depth + 1, count)


def read_config(path: Path) -> dict:
    """The mapping of a config file: one ConfigError naming the file for whatever is wrong with it."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{path} is not a regular file", fix="make it a file (or a link to one)")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", fix="make it a readable file") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB", fix="a config is a few lines: check that this is the right file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})",
                          fix="save it as UTF-8 (e.g. `iconv -f GBK -t UTF-8`)") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
        _check_size(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err.message}", fix=err.fix) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", fix="fix the syntax at the line named above") from None
    except (RecursionError, _TooLarge):
        raise ConfigError(f"{path} is nested deeper than {MAX_DEPTH} levels or has more than {MAX_NODES} values",
                          fix="write the config as in `ascend-build init`, without deep nesting or repeated aliases") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: a value cannot be read: {exc}", fix="quote the value (\"...\") to keep it as text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of keys to values", fix="see `ascend-build schema`")
    return data


def working_dir(workdir: Path) -> Path:
    """`workdir` when it is a folder; ConfigError otherwise."""
    workdir = Path(workdir)
    try:
        if workdir.is_dir():
            return workdir
    except OSError as exc:
        raise ConfigError(f"cannot open the working directory {workdir}: {exc.strerror or exc}",
                          fix="pass a readable folder with -C") from None
    what = "does not exist" if not workdir.exists() else "is not a folder"
    raise ConfigError(f"the working directory {workdir} {what}", fix="pass the folder with the packages with -C DIR")


def load_spec(workdir: Path, **overrides) -> BuildSpec:
    """Read ascend-build.yaml from `workdir` (defaults when absent) and apply CLI overrides
    (None values are ignored)."""
    path = working_dir(workdir) / CONFIG_NAME
    data = read_config(path) if os.path.lexists(path) else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    data.update(given)
    try:
        return BuildSpec.model_validate(data)
    except ValidationError as err:
        raise _explain(err, path, given) from None


def schema() -> dict:
    return BuildSpec.model_json_schema()
