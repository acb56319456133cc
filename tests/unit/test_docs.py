"""The READMEs and CI agree on the commands users are told to run."""
import re

from conftest import REPO


def ci_test_command() -> str:
    return re.search(r'^TEST_COMMAND="(.*)"$', (REPO / ".ci/run").read_text(), re.M).group(1)


def quick_start(readme: str) -> list:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / readme).read_text(), re.S)[:2]


def test_both_readmes_have_the_same_two_quick_start_commands():
    en, zh = quick_start("README.md"), quick_start("README.zh-CN.md")
    assert len(en) == 2 and en == zh
    assert all("\n" not in cmd for cmd in en), "each quick-start command is one line"


def test_ci_runs_the_readme_test_command():
    assert quick_start("README.md")[1] == ci_test_command()


def test_every_command_in_help_is_documented():
    from typer.main import get_command

    from ascend_build.cli import app

    names = sorted(get_command(app).commands)
    for readme in ("README.md", "README.zh-CN.md"):
        text = (REPO / readme).read_text()
        for name in names:
            assert f"`ascend-build {name}" in text, f"{name} missing from {readme}"


def test_every_option_is_documented():
    from typer.main import get_command

    from ascend_build.cli import app

    group = get_command(app)
    for readme in ("README.md", "README.zh-CN.md"):
        text = (REPO / readme).read_text()
        missing = [f"{name} {opt}" for name, command in group.commands.items() for param in command.params
                   if not getattr(param, "hidden", False) for opt in param.opts
                   if opt.startswith("--") and opt not in ("--help",) and opt not in text]
        assert not missing, f"{readme} does not mention: {missing}"
