"""The image contract: what ascend-build writes into an image and reads back from it (label
keys, in-image paths, the build secret's id). Render, delivery, components, verify and inspect
import it; the shell templates receive these values as variables."""
from typing import Dict

LABEL_NS = "io.ascend-build"
TOOL_DIR = "/opt/ascend-build"                        # lib.sh, run-stage.sh, install_<stage>.sh
PKG_DIR = "/tmp/ascend-pkgs"                          # <stage>/ holds the stage's files while it installs
BUILT_WHEELS = "/tmp/ascend-pkgs/built"                # wheels built from a stage's sdists, while it installs
BUILDER_WHEELS = "/ab-built"                           # the same in the stage's sdist builder (sdist_stage.py)
NATIVE_TOOLS = "/tmp/ab-tools"                         # the build host's byte tools, mounted while a stage installs
ENTRYPOINT = "/usr/local/bin/ascend-entrypoint"
PROFILE = "/etc/profile.d/ascend-build.sh"
URL_SECRET = "ascend-pkg-url"                         # build secret holding the package server URL
# docker's classic builder has no secrets, but keeps its predefined proxy build arguments out of
# the layer cache key and the image history: the URL travels in this one, after this prefix
URL_ARG, URL_ARG_PREFIX = "FTP_PROXY", "ascend-pkg-url="
DEFAULT_INSTALL_PATH = "/usr/local/Ascend"
# the Dockerfile's helper stages: where the native install asks the image's pip (native_install.py),
# and the build host's byte tools it mounts, `<stage>-native`, `<stage>-sdists` (sdist_stage.py), a capture
# build's target (render.capture_prefix)
SCHEME_STAGE, TOOLS_STAGE, WARM_STAGE = "native-scheme", "native-tools", "ab-capture"
NATIVE_SUFFIX, SDISTS_SUFFIX = "-native", "-sdists"


def helper_stage(name: str) -> bool:
    """A name the tool gives one of its helper stages (a custom stage may not take it)."""
    return name in (SCHEME_STAGE, TOOLS_STAGE, WARM_STAGE) or name.endswith((NATIVE_SUFFIX, SDISTS_SUFFIX))


def label(key: str) -> str:
    """The full name of one of ascend-build's labels, e.g. label("target")."""
    return f"{LABEL_NS}.{key}"


# the shell lines of every stage's set_env steps (JSON list): what verify sources again
SET_ENV_LABEL = label("set-env")


def component_label(component: str, field: str) -> str:
    """io.ascend-build.<component>.<field> (version, file, sha256); `_` in the name becomes `-`."""
    return label(f"{component.replace('_', '-')}.{field}")


def template_values() -> Dict[str, str]:
    """The contract as the variables every template receives."""
    return {"tool_dir": TOOL_DIR, "pkg_dir": PKG_DIR, "entrypoint": ENTRYPOINT, "profile": PROFILE,
            "url_secret_id": URL_SECRET, "native_tools": NATIVE_TOOLS, "url_arg": URL_ARG, "url_arg_prefix": URL_ARG_PREFIX}
