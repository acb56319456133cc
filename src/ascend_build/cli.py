"""The command line: one small function per command, no logic of its own."""
import signal
import sys
from pathlib import Path

import typer

from . import __version__
from .console import make_console
from .errors import AscendBuildError, Interrupted

app = typer.Typer(
    name="ascend-build",
    help="Build tested container images for Huawei Ascend NPUs from a folder of installers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

WORKDIR = typer.Option(Path("."), "-C", "--workdir", help="Working directory with the packages and ascend-build.yaml.")


def _version(value: bool) -> None:
    if value:
        print(f"ascend-build {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Build tested container images for Huawei Ascend NPUs from a folder of installers."""


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to scaffold (created when missing)."),
    demo: bool = typer.Option(False, "--demo", help="Also write a stand-in package set (placeholder installers)."),
    arch: str = typer.Option("host", help="Package arch for --demo: x86_64, aarch64 or host."),
    cann: str = typer.Option("8.5.0", help="CANN family for --demo: 8.0.RC2 or 8.5.0."),
    chip: str = typer.Option("910b", help="Chip for --demo: 310p, 910b, A3..."),
    python: str = typer.Option("3.11", help="Python version the demo wheels are built for."),
    filler: str = typer.Option("1MiB", help="Incompressible bytes installed by each demo package (e.g. 512KiB, 64MiB)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Scaffold a working directory (config, README, requirements); --demo adds stand-in packages."""
    from .scaffold import scaffold

    console = make_console()
    written = scaffold(directory, demo=demo, arch=arch, cann=cann, chip=chip, python=python, filler=filler, force=force)
    for path in written:
        console.print(f"  wrote {path}")
    console.print(f"[green]Ready:[/] {directory}" + ("  (stand-in packages: they install placeholder files only)" if demo else ""))


# -- commands added by later issues go below this line --


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Interrupted("interrupted")


def main() -> None:
    """Entry point: every user error becomes one message and an exit code, never a traceback."""
    signal.signal(signal.SIGINT, _interrupt)
    console = make_console()
    try:
        app()
    except AscendBuildError as err:
        console.print(f"[bold red]error:[/] {err.message}")
        if err.fix:
            console.print(f"[yellow]fix:[/] {err.fix}")
        sys.exit(err.exit_code)
