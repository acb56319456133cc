"""grammar.py: every config value and file name that reaches a Dockerfile or a script is either
refused with one clear message or matches a strict grammar (no control characters, no shell
metacharacters)."""
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ascend_build import grammar
from ascend_build.catalog.naming import identify, is_safe_name
from ascend_build.errors import ConfigError
from ascend_build.spec import BuildSpec
from ascend_build.catalog.model import file_patterns
from ascend_build.components.registry import components

NAMES = file_patterns(components())   # the file names the components declare

SHELL_META = set(" \t\n\r'\"`$;&|<>()\\*?[]{}!#")     # and a leading ~ or -


@pytest.mark.parametrize("value", [
    "ubuntu", "ubuntu:22.04", "docker.io/library/ubuntu:22.04", "localhost:5000/team/img:v1.2-rc_3",
    "registry.example.com/a/b/c", "openeuler/openeuler:22.03-lts", "Registry.Example.com:443/x/y:TAG",
    "ubuntu@sha256:" + "0" * 64, "quay.io/x/y:1@sha256:" + "a" * 64, "[::1]:5000/img", "my__img", "a-b--c",
])
def test_image_references_that_pass(value):
    assert grammar.image_reference(value) == value


@pytest.mark.parametrize("value", [
    "", "Ubuntu", "ubuntu\nRUN id", "ubuntu:22.04 AS x", "ubuntu;id", "$(id)", "ubuntu:", ":tag",
    "ubuntu@sha256:abc", "ubuntu@md5:" + "0" * 32, "-ubuntu", "ubuntu/", "a//b", "ubuntu:" + "x" * 129,
    "ubuntu:-x", "ubuntu:22.04\r", "ubuntu\t", "img:昇腾",
])
def test_image_references_that_fail(value):
    with pytest.raises(ValueError):
        grammar.image_reference(value)


@pytest.mark.parametrize("check, good, bad", [
    (grammar.absolute_path, ["/usr/local/Ascend", "/opt/a_b/c+d-1.0"],
     ["usr/local", "/usr/local/", "/usr//local", "/usr/./x", "/usr/../etc", "/", "/a b", "/a\nb", "/a/$(id)", "/a/-x"]),
    (grammar.env_key, ["PATH", "_x", "ASCEND_HOME_2"], ["2X", "A-B", "A B", "A\nB", "", "Ä"]),
    (grammar.label_key, ["org.opencontainers.image.title", "team", "a_b-c.d"],
     ["Team", "a b", "a\nb", ".a", "a.", "", "a=b", "昇腾"]),
    (grammar.timezone, ["UTC", "Asia/Shanghai", "America/Argentina/Buenos_Aires", "Etc/GMT+8", "Etc/GMT-14"],
     ["Asia/Shanghai;id", "../etc/passwd", "Asia/../x", "/UTC", "UTC/", "Asia Shanghai", "a/b/c/d", ""]),
    (grammar.os_package, ["vim", "gcc-c++", "libstdc++-devel", "python3-PyYAML", "vim=2:8.2.3995-1ubuntu2"],
     ["-o", "vim;id", "vim curl", "$(id)", "vim\n", ""]),
    (grammar.user_name, ["HwHiAiUser", "app", "_svc", "a.b-c"], ["root;id", "-x", "1abc", "a b", "x" * 40, ""]),
    (grammar.host, ["mirror.example.com", "10.0.0.1", "mirror:8080", "[::1]:8080"],
     ["mirror.example.com;id", "http://x", "a b", "-x.com", "x.com:123456", ""]),
    (grammar.url, ["https://mirror.example.com/simple", "http://u:p@10.0.0.1:8080/pypi/simple/", "https://x.org/a%20b"],
     ["ftp://x.org", "https://x.org/$(id)", "https://x.org/a;b", "https://x.org/a b", "https://x.org/\n",
      "https://", "https://x.org/`id`", "https://x.org/a&b", "file:///etc/passwd"]),
    (grammar.chip, ["310p", "910", "910b", "A3", "a3", "950", "910B"], ["../../x", "910b/..", "x", "9100b", "", "910b\n"]),
    (grammar.stage_name, ["app", "my-app_2"], ["App", "2app", "a b", "", "a" * 64]),
    (grammar.relative_file, ["app.py", "models/a.bin", "requirements-app.txt"],
     ["/etc/passwd", "../x", "a/../b", "a//b", "app files.txt", "a/./b", "-x", "a/$(id)"]),
])
def test_grammar_examples(check, good, bad):
    for value in good:
        assert check(value) == value
    for value in bad:
        with pytest.raises(ValueError):
            check(value)


@pytest.mark.parametrize("text, size", [("1MiB", 1 << 20), ("512KiB", 512 << 10), ("4096", 4096), ("4GiB", 4 << 30), ("1gb", 10**9)])
def test_sizes(text, size):
    assert grammar.size(text) == size


@pytest.mark.parametrize("text", ["5GiB", " 1MiB", "1 MiB", "-1", "1e9", "1" * 5000, "1TiB", "", "１MiB"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        grammar.size(text)


def test_values_allow_unicode_and_tab_but_no_line_breaks():
    assert grammar.free_text("昇腾\tAscend") == "昇腾\tAscend"
    for bad in ("a\nb", "a\rb", "a\x1bb", "a\u2028b", "a\x85b", "a\x00b"):
        with pytest.raises(ValueError):
            grammar.free_text(bad)
    assert grammar.script("set -e\n\techo hi\n")
    with pytest.raises(ValueError, match="LF line endings"):
        grammar.script("echo hi\r\n")


# -- properties: whatever the input, one clear refusal or a strict value ------------------------

STRING_FIELDS = ["base_image", "target", "chip", "python", "install_path", "timezone", "pip_index_url", "pip_trusted_host"]
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NASTY = st.sampled_from(["", "\n", "\r", " ", ";", "$(id)", "`id`", "'", '"', "\\", "&", "|", "..", "/", "-", "\x00", "\u2028", "昇腾"])
TEXT = st.one_of(ANY_TEXT, st.lists(st.one_of(NASTY, st.text(string.ascii_letters + string.digits + "._-/:@", max_size=8)),
                                    max_size=6).map("".join))


def _strings(spec: BuildSpec):
    """(key, text, strict): strict texts reach scripts unquoted-safe; label/env values are free text."""
    data = spec.model_dump()
    for key in STRING_FIELDS:
        yield key, data[key], True
    yield "user.name", data["user"]["name"], True
    for value in data["system_packages"]:
        yield "system_packages", value, True
    for key, value in data["labels"].items():
        yield "labels", key, True
        yield "labels", value, False
    for stage in data["stages"]:
        yield "stages.name", stage["name"], True
        yield from (("stages.files", f, True) for f in stage["files"])
        for key, value in stage["env"].items():
            yield "stages.env", key, True
            yield "stages.env", value, False


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(STRING_FIELDS + ["user", "system_packages", "labels", "env", "files"]),
       value=TEXT, other=TEXT)
def test_config_values_are_refused_or_strict(field, value, other):
    data = {
        "user": {"user": {"name": value}},
        "system_packages": {"system_packages": [value]},
        "labels": {"labels": {value: other}},
        "env": {"stages": [{"name": "app", "parent": "mindie", "script": "true", "env": {value: other}}]},
        "files": {"stages": [{"name": "app", "parent": "mindie", "script": "true", "files": [value]}]},
    }.get(field, {field: value})
    try:
        spec = BuildSpec.model_validate(data)
    except ValidationError as err:
        assert err.errors()                       # refused, with a reason per value
        return
    for key, text, strict in _strings(spec):
        if text is None:
            continue
        assert not grammar.control_chars(text, "\t"), (key, text)
        if strict:
            assert not set(text) & SHELL_META and not text.startswith(("-", "~")), (key, text)


FILE_CHARS = st.characters(blacklist_categories=("Cs",))


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(FILE_CHARS, min_size=1, max_size=60),
                      st.builds(lambda a, b: f"torch-2.1.0-{a}-{b}-linux_x86_64.whl", TEXT, TEXT),
                      st.builds(lambda v: f"Ascend-cann-toolkit_{v}_linux-x86_64.run", TEXT)))
def test_file_names_are_refused_or_safe(name):
    found = identify(name, NAMES) if "/" not in name and "\x00" not in name else None
    if is_safe_name(name):
        assert not set(name) & SHELL_META and not name.startswith("-")
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", name)
    elif found is not None:
        assert not grammar.FILE_NAME.fullmatch(name)     # identified, but scan refuses it (test_scan.py)


def test_load_spec_errors_are_config_errors(tmp_path):
    (tmp_path / "ascend-build.yaml").write_text("labels:\n  'a\\nb': x\n")
    from ascend_build.spec import load_spec

    with pytest.raises(ConfigError, match="labels"):
        load_spec(tmp_path)


YAML_PIECES = st.sampled_from(["base_image: ", "labels:\n  ", "stages:\n  - name: ", "user: {name: ", "timezone: ",
                               "install_path: ", "&a ", "*a", "[", "]", "{", "}", "\n", "  ", "- ", ": ", "'", '"',
                               "\\n", "$(id)", "ubuntu:22.04", "\t", "\x00", "\xb2", "<<: ", "!!python/object:os.system",
                               "昇腾", "? ", "1e999", "0x", "~", "%YAML 1.1\n", "---\n"])


@settings(max_examples=300, deadline=None)
@given(doc=st.one_of(st.lists(YAML_PIECES, max_size=25).map("".join).map(str.encode),
                     st.binary(max_size=200)))
def test_any_config_file_is_a_spec_or_one_config_error(tmp_path_factory, doc):
    from ascend_build.spec import load_spec

    work = tmp_path_factory.mktemp("cfg")
    (work / "ascend-build.yaml").write_bytes(doc)
    try:
        spec = load_spec(work)
    except ConfigError as err:
        assert "ascend-build.yaml" in err.message and err.fix
        return
    for key, text, strict in _strings(spec):
        if text is not None:
            assert not grammar.control_chars(text, "\t"), (key, text)
            assert not strict or not set(text) & SHELL_META, (key, text)
