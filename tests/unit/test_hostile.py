"""Hostile and careless input, through the command line: whatever the file name or config value,
the result is one clear refusal or a Dockerfile BuildKit's parser accepts and scripts `bash -n`
accepts, in which the value is only ever a quoted word; a state folder or server token that is
not what it should be is one message; a package that changed after `check` fails the build
naming the file and `check --rehash`."""
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import dockerfile
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from clirun import cli
from ascend_build.build import BuildOptions, failure_hint, run_build
from ascend_build.components import render_script
from ascend_build.errors import BuildError, OutputError
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec
from ascend_build.workdir import State
from test_server import serving, wait_for_line
from test_settings import FakeEngine, Quiet, my_docker

BASE = "localhost/ascend-build-base:bookworm"
CANARY = "PWNED"


def one_refusal(result: subprocess.CompletedProcess) -> bool:
    """Exit 1 (or 2 for usage), one message, no traceback."""
    text = result.stdout + result.stderr
    return (result.returncode in (1, 2) and "Traceback" not in text
            and text.lower().count("error") >= 1 and text.count("error:") <= 1)


def make_workdir(root: Path) -> Path:
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="1KiB", force=False)
    (root / "app.txt").write_text("app\n")
    shutil.copy(root / "ascend-build.yaml", root.parent / "scaffolded.yaml")
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("hostile") / "w")


def base_config(workdir: Path) -> dict:
    """The config init wrote, with a custom stage `app` (one file) as the target."""
    config = yaml.safe_load((workdir.parent / "scaffolded.yaml").read_text())
    config.update(target="app", base_image=BASE,
                  stages=[{"name": "app", "parent": "mindie", "script": "true\n", "files": ["app.txt"]}])
    return config


# -- the property: refused, or parsed and quoted --------------------------------------------------


@pytest.fixture(scope="module")
def template(workdir, tmp_path_factory):
    """The lines of the plan without a hostile value."""
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(base_config(workdir)))
    out = tmp_path_factory.mktemp("plain") / "out"
    result = cli("plan", "-C", workdir, "-o", out, "--platform", "x86_64")
    assert result.returncode == 0, result.stdout + result.stderr
    return lines_of(out)

NASTY = ["$(touch PWNED)", "`touch PWNED`", "${IFS}", "; touch PWNED", "a b", "'", '"', "\\", "\n", "\r\n", "\t",
         "-rf", "--help", "&&", "|", ">x", "*", "~", "#", "昇腾", "Zhāng", "\u2028", "\x00", "..", "/", ":", "@",
         "=", "x" * 300]
HOSTILE = st.one_of(
    st.sampled_from(NASTY),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text("abcXYZ019._-/:@+", min_size=1, max_size=6)),
             min_size=1, max_size=5).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.just("v" * 5000),
    st.text("abcXYZ019._-+", min_size=1, max_size=12),          # nearly plain: strict fields take some
)
FIELDS = ["base_image", "--base-image", "timezone", "system_packages", "user.name", "install_path", "pip_index_url",
          "label key", "label value", "env key", "env value", "custom file", "package name"]
FREE_TEXT = ["label value", "env value"]                           # any one line of text is accepted


def hostile_config(workdir: Path, field: str, value: str, tmp: Path) -> list:
    """Write the config with `value` in `field` (and the file it names); the extra CLI args."""
    config, stage = base_config(workdir), None
    stage = config["stages"][0]
    extra = []
    if field == "--base-image":
        extra = ["--base-image", value]
    elif field == "system_packages":
        config["system_packages"] = [value]
    elif field == "user.name":
        config["user"] = {"name": value}
    elif field == "label key":
        config["labels"] = {value: "x"}
    elif field == "label value":
        config["labels"] = {"org.example.note": value}
    elif field == "env key":
        stage["env"] = {value: "x"}
    elif field == "env value":
        stage["env"] = {"APP_NOTE": value}
    elif field in ("custom file", "package name"):
        name = f"torch_npu-2.6.0.post5-cp311-{value}-linux_x86_64.whl" if field == "package name" else value
        try:
            if field == "package name":
                (workdir / "packages" / name).write_bytes(b"PK\x05\x06" + bytes(18))
                tmp.joinpath("created").write_text(name)
            else:
                stage["files"] = [name]
                if name not in ("app.txt", "ascend-build.yaml"):
                    (workdir / name).write_text("x\n")
                    tmp.joinpath("created").write_text(name)
        except (OSError, ValueError):
            pass
    else:
        config[field] = value
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return extra


def raw_words(line: str):
    """The words of a shell line as written (quotes kept), split the way bash splits them."""
    lexer = shlex.shlex(line, posix=False, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def assert_only_quoted(text: str, value: str, sandbox: Path, where: str, template: set) -> None:
    """Every word of `text` that holds `value` is literal text to bash: printing it in a sandbox
    gives the word shlex reads, and runs nothing (no PWNED file). Lines and words of the plain
    plan (`template`) are the tool's own text, not the value."""
    for line in text.splitlines():
        if value not in line or line in template or line.lstrip().startswith("#"):
            continue
        for word in raw_words(line):
            literal = shlex.split(word)[0] if word.strip() else ""
            if value not in literal or word in template:
                continue
            shown = subprocess.run(["bash", "-c", f"printf %s {word}"], cwd=sandbox, capture_output=True, text=True)
            assert shown.stdout == literal, (where, line, word)
            assert not (sandbox / CANARY).exists(), (where, line)


def lines_of(out: Path) -> set:
    """The lines, RUN commands and shell words of a written plan."""
    lines = {line for path in [out / "Dockerfile", *(out / "scripts").iterdir()]
             for line in path.read_text(encoding="utf-8").splitlines()}
    lines |= {c.value[0] for c in dockerfile.parse_string((out / "Dockerfile").read_text(encoding="utf-8"))
              if c.cmd == "RUN"}
    words = set()
    for line in lines:
        try:
            words.update(raw_words(line))
        except ValueError:              # a line of a multi-line string or a comment: no words
            pass
    return lines | words


def check_outputs(out: Path, value: str, sandbox: Path, template: set) -> None:
    text = (out / "Dockerfile").read_text(encoding="utf-8")
    commands = dockerfile.parse_string(text)
    assert commands[0].cmd == "ARG" and [c.cmd for c in commands].count("FROM") >= 5
    assert {c.cmd for c in commands} <= {"ARG", "FROM", "COPY", "RUN", "ENV", "LABEL", "USER", "WORKDIR", "ENTRYPOINT", "CMD"}
    for command in commands:
        if command.cmd == "RUN":
            script = command.value[0]
            assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0, script
            assert_only_quoted(script, value, sandbox, command.original, template)
        elif command.cmd in ("LABEL", "ENV") and value in command.original:
            pairs = dict(zip(command.value[::2], command.value[1::2]))
            assert any(v.startswith('"') and v.endswith('"') or v == value for v in pairs.values()), command.original
    for script in (out / "scripts").iterdir():
        body = script.read_text(encoding="utf-8")
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, script.name
        assert_only_quoted(body, value, sandbox, script.name, template)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS + FREE_TEXT), value=HOSTILE)
def test_any_name_or_value_is_refused_or_only_quoted(workdir, template, tmp_path_factory, field, value):
    assume(not (field.startswith("--") and "\x00" in value))       # no command line can carry a NUL
    tmp = tmp_path_factory.mktemp("case")
    sandbox = tmp / "sandbox"
    sandbox.mkdir()
    extra = hostile_config(workdir, field, value, tmp)
    try:
        result = cli("plan", "-C", workdir, "-o", tmp / "out", "--platform", "x86_64", *extra, timeout=120)
        event(f"{field}: {'refused' if result.returncode else 'planned'}")
        if result.returncode != 0:
            assert one_refusal(result), (field, value, result.stdout + result.stderr)
        else:
            check_outputs(tmp / "out", value, sandbox, template)
        assert not (sandbox / CANARY).exists() and not (workdir / CANARY).exists()
    finally:
        created = tmp / "created"
        if created.exists():
            name = created.read_text()
            for where in (workdir / name, workdir / "packages" / name):
                if where.is_file():
                    where.unlink()


def test_unicode_labels_are_written_as_utf8(tmp_path):
    workdir = make_workdir(tmp_path / "w")
    config = base_config(workdir)
    config["labels"] = {"org.example.vendor": "昇腾 Ascend", "maintainer": "Zhāng 张"}
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = cli("plan", "-C", workdir, "-o", tmp_path / "out", "--platform", "x86_64")
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "out" / "Dockerfile").read_text(encoding="utf-8")
    assert 'org.example.vendor="昇腾 Ascend"' in text and 'maintainer="Zhāng 张"' in text
    assert "\\u" not in text
    labels = [c for c in dockerfile.parse_string(text) if c.cmd == "LABEL"]
    assert any('"昇腾 Ascend"' in c.value for c in labels)


# -- the state folder and the server token --------------------------------------------------------


@pytest.fixture
def matrix_workdir(tmp_path):
    root = tmp_path / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="1KiB", force=False)
    config = yaml.safe_load((root / "ascend-build.yaml").read_text())
    config.pop("chip")
    config["matrix"] = {"chip": ["910b"]}
    (root / "ascend-build.yaml").write_text(yaml.safe_dump(config))
    return root


def command_line(command: str, workdir: Path, tmp_path: Path) -> list:
    return {
        "serve": ["serve", "-C", workdir, "--host", "127.0.0.1", "--port", "0"],
        "bake": ["bake", "-C", workdir, "-o", tmp_path / "bake.json"],
        "build": ["build", "-C", workdir, "--engine", "docker", "--docker-bin", my_docker(tmp_path), "--host",
                  "127.0.0.1", "--port", "0", "--target", "cann", "--platform", "x86_64", "--base-image", BASE],
    }[command]


@pytest.mark.parametrize("kind", ["file", "link loop"])
@pytest.mark.parametrize("command", ["serve", "bake", "build"])
def test_a_state_folder_that_is_not_a_folder_is_one_message(matrix_workdir, tmp_path, command, kind):
    state = matrix_workdir / ".ascend-build"
    shutil.rmtree(state, ignore_errors=True)
    if kind == "file":
        state.write_text("not a folder\n")
    else:
        state.symlink_to(state.name)
    result = cli(*command_line(command, matrix_workdir, tmp_path), timeout=60,
                 env={**os.environ, "ASCEND_BUILD_DOCKER": ""})
    assert one_refusal(result) and result.returncode == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"cannot use {state}: it is not a folder" in message or f"cannot follow {state}: Symlink loop" in message
    assert state.is_symlink() or state.read_text() == "not a folder\n"


def test_a_state_folder_that_cannot_be_written_is_one_message(tmp_path, monkeypatch):
    """Read-only (a root user writes anyway, so the refusal of the folder is simulated)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(OutputError, match=r"\.ascend-build: Permission denied") as err:
        State.of(tmp_path)
    assert "writable folder" in err.value.fix


@pytest.mark.parametrize("kind", ["folder", "fifo", "link"])
def test_a_server_token_that_is_not_a_regular_file_is_one_message(matrix_workdir, tmp_path, kind):
    token = matrix_workdir / ".ascend-build" / "server-token"
    token.parent.mkdir(exist_ok=True)
    if kind == "folder":
        token.mkdir()
    elif kind == "fifo":
        os.mkfifo(token)
    else:
        (tmp_path / "elsewhere").write_text("A" * 32)
        token.symlink_to(tmp_path / "elsewhere")
    result = cli(*command_line("serve", matrix_workdir, tmp_path), timeout=30)
    assert one_refusal(result) and result.returncode == 1, result.stdout + result.stderr
    assert "server-token" in result.stderr and f"remove {token}" in " ".join(result.stderr.split())


@pytest.mark.parametrize("content", [b"", b"\n", b"short", b"a b c d e f g h i j k l m n o p", b"$(touch PWNED)xxxxxxxxxxxx",
                                     b"\xff\xfe" * 20, b"A" * 5000])
def test_a_server_token_of_the_wrong_shape_is_made_again(tmp_path, content):
    state = State.of(tmp_path)
    (state.root / "server-token").write_bytes(content)
    token = state.token()
    assert token != content.decode("latin-1").strip() and len(token) >= 16
    assert (state.root / "server-token").read_text() == token and state.token() == token
    assert oct((state.root / "server-token").stat().st_mode & 0o777) == "0o600"


def test_a_good_server_token_is_kept(tmp_path):
    state = State.of(tmp_path)
    first = state.token()
    assert State.of(tmp_path).token() == first



@pytest.mark.parametrize("content", [b"", b"short", b"0123456789abc", b"0123456789AB", b"$(touch PWNED)", b"\xff" * 12,
                                     b"0123456789ab\nRUN rm -rf /"])
def test_a_cache_epoch_of_the_wrong_shape_is_none_and_never_reaches_the_dockerfile(tmp_path, content):
    state = State.of(tmp_path)
    (state.root / "cache-epoch").write_bytes(content)
    assert state.cache_epoch() is None
    epoch = state.cache_epoch(renew=True)
    assert re.fullmatch(r"[0-9a-f]{12}", epoch) and state.cache_epoch() == epoch
    assert state.cache_epoch(renew=True) != epoch


@pytest.mark.parametrize("kind", ["folder", "fifo", "link"])
def test_a_cache_epoch_that_is_not_a_regular_file_is_one_message(tmp_path, kind):
    state = State.of(tmp_path)
    epoch = state.root / "cache-epoch"
    if kind == "folder":
        epoch.mkdir()
    elif kind == "fifo":
        os.mkfifo(epoch)
    else:
        (tmp_path / "elsewhere").write_text("0123456789ab")
        epoch.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match="layer cache's epoch") as err:
        state.cache_epoch()
    assert f"remove {epoch}" in err.value.fix

# -- symbolic link loops in the working directory ---------------------------------------------------


LOOPS = ["x.whl", "packages/y.run", "requirements-x.txt"]


def make_loops(workdir: Path) -> None:
    for name in LOOPS:
        (workdir / name).symlink_to(Path(name).name)


def test_link_loops_in_the_working_directory_are_named_by_check(matrix_workdir):
    make_loops(matrix_workdir)
    result = cli("check", "-C", matrix_workdir)
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "Traceback" not in text
    assert all(f"{name} is a symlink loop" in text for name in LOOPS), text


def test_serve_leaves_out_link_loops_and_says_so(matrix_workdir):
    make_loops(matrix_workdir)
    with serving(matrix_workdir, "--host", "127.0.0.1", "--port", "0") as (proc, lines):
        _, seen = wait_for_line(lines, r"only these files are served")
        for name in LOOPS:
            assert f"warning: not served: {name} is a symlink loop" in seen
            assert f"/{Path(name).name}\n" not in seen
        assert "/torch_npu-" in seen and "Traceback" not in seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130


def test_a_packages_folder_that_is_a_link_loop_is_one_message(matrix_workdir):
    shutil.rmtree(matrix_workdir / "packages")
    (matrix_workdir / "packages").symlink_to("packages")
    for args in (["check"], ["serve", "--host", "127.0.0.1", "--port", "0"]):
        result = cli(*args, "-C", matrix_workdir, timeout=30)
        assert one_refusal(result) and "cannot list packages/" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["packages", ".ascend-build"])
def test_init_demo_where_a_folder_is_a_link_loop(tmp_path, name):
    (tmp_path / name).symlink_to(name)
    result = cli("init", "--demo", tmp_path, "--force", "--filler", "1KiB")
    assert one_refusal(result) and f"{name} is a symbolic link to no folder" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# -- a package that changed after check: the build names it and says check --rehash --------------


def test_a_sha256_mismatch_in_the_build_names_the_file_and_check_rehash(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "lib.sh").write_text(render_script("lib.sh.j2"))
    (tools / "run-stage.sh").write_text(render_script("run-stage.sh.j2", tool_dir=str(tools)))
    (tools / "install_app.sh").write_text("touch installed\n")
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    (pkgs / "app.whl").write_bytes(b"changed after check\n")
    stale = "0" * 64
    result = subprocess.run(["bash", str(tools / "run-stage.sh"), "app", "mount", str(pkgs), f"app.whl={stale}"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and not (tmp_path / "installed").exists()
    assert "app.whl does not match the sha256 in the plan" in result.stderr
    assert "ascend-build check --rehash" in result.stderr
    assert "check --rehash" in failure_hint(result.stderr)


def test_a_full_disk_in_the_build_says_how_to_free_the_engines_space():
    """As BuildKit said it when the builder's disk filled in the middle of a COPY."""
    said = "#17 ERROR: failed to copy files: copy file range failed: no space left on device"
    assert "docker builder prune" in failure_hint(said) and "podman system prune" in failure_hint(said)
    assert failure_hint("exit code: 2") == "see the output above and the full log"


def test_the_build_passes_the_mismatch_on_with_the_rehash_advice(matrix_workdir):
    """What the stage script prints reaches the user as the build's error, with check --rehash as the fix."""
    class Failing(FakeEngine):
        def build(self, req):
            raise BuildError("cann failed:\nascend-build[cann]: FAILED: Ascend-cann-toolkit_8.5.0_linux-x86_64.run "
                             "does not match the sha256 in the plan (00): it changed after ascend-build read it")

    settings = settings_for(matrix_workdir, Options(target="cann", platform="x86_64", host="127.0.0.1"), Failing(),
                            spec=BuildSpec(base_image=BASE))
    with pytest.raises(BuildError) as err:
        run_build(settings, BuildOptions(port=0), Quiet())
    assert "Ascend-cann-toolkit_8.5.0_linux-x86_64.run does not match" in err.value.message
    assert "ascend-build check --rehash" in err.value.fix
