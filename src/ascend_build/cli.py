"""The command line: one small function per command, no logic of its own."""
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from . import __version__
from .buildflags import default, spellings
from .console import make_console, print_json
from .stdout import write_out
from .errors import AscendBuildError, ConfigError, Interrupted

app = typer.Typer(
    name="ascend-build",
    help="Build tested container images for Huawei Ascend NPUs from a folder of installers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _answered(name: str, help: str):
    """An option `build` shares with the no-change fast path: its spellings and default are
    buildflags.py's, the table the fast path parses `build ...` with."""
    return typer.Option(default(name), *spellings(name), help=help)


WORKDIR = typer.Option(Path(default("workdir")), *spellings("workdir"), help="Working directory with the packages and ascend-build.yaml.")


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
    cann: str = typer.Option("8.5.0", help="CANN family for --demo: 8.0.RC2, 8.3.RC1, 8.3.RC1-nnrt (inference runtime only), 8.5.0, 9.0.0, 9.0.0-pip (CANN as pip wheels) or 9.1.0 (with the vLLM-Ascend stand-ins)."),
    chip: str = typer.Option("910b", help="Chip for --demo: 310p, 910b, A3..."),
    python: str = typer.Option("3.11", help="Python version the demo wheels are built for."),
    filler: str = typer.Option("1MiB", help="Incompressible bytes installed by each demo package (e.g. 512KiB, 64MiB)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the scaffold's files; --demo replaces only stand-ins an earlier init wrote."),
    signed: bool = typer.Option(False, "--signed", help="With --demo: CANN packages as official signed zips, signed by a demo CA (demo-root.pem, trusted in the config)."),
    elf: bool = typer.Option(False, "--elf", help="With --demo: the stand-in CANN libraries must be ELF files for --arch (an error without a C compiler for it; by default they are text placeholders then)."),
    mindspore: bool = typer.Option(False, "--mindspore", help="With --demo: also the family's stand-in MindSpore wheel (build it with --target mindspore)."),
) -> None:
    """Scaffold a working directory (config, README, requirements); --demo adds stand-in packages."""
    import warnings

    from .scaffold import scaffold

    console = make_console()
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        written, kept = scaffold(directory, demo=demo, arch=arch, cann=cann, chip=chip, python=python, filler=filler, force=force,
                                 signed=signed, elf=elf or None, more=("mindspore",) if mindspore else ())
    for note in notes:
        console.print(f"  [yellow]note[/] {note.message}")
    for path in written:
        console.print(f"  wrote {path}")
    for path in kept:
        console.print(f"  [yellow]kept[/] {path}: not a stand-in this init wrote (a real package?), left as it is")
    console.print(f"[green]Ready:[/] {directory}" + ("  (stand-in packages: they install placeholder files only)" if demo else ""))


TARGET = _answered("target", help="Last stage: base, cann, pta, mindie, mindspore, vllm or a custom stage (default: the config's).")
DELIVERY = _answered("delivery", help="How installers reach the build: auto, http, mount or copy.")
BASE_IMAGE = _answered("base_image", help="Image the base stage starts from (overrides the config).")
PLATFORM = _answered("platform", help="Build platform: x86_64/aarch64 or linux/amd64, linux/arm64 (default: this host); check and build take several, comma-separated.")
REHASH = typer.Option(False, "--rehash", help="Read every package again instead of trusting the hash cache.")
NO_WAIT = _answered("no_wait", help="Fail at once when another ascend-build run is writing in the working folder (default: wait for it).")


def _one_writer(workdir: Path, no_wait: bool):
    """Hold the working folder's lock for the block: one build, fetch or bake at a time (a folder
    that does not exist is left to the command to name)."""
    import contextlib

    from .statelock import command_line, one_writer
    from .workdir import State

    if not Path(workdir).is_dir():
        return contextlib.nullcontext()
    console = make_console()
    return one_writer(State.of(workdir).root, command_line(), not no_wait,
                      lambda text: console.print(f"[yellow]{escape(text)}[/]", soft_wrap=True))


def _rehash(workdir: Path, rehash: bool) -> None:
    if rehash:
        from .catalog.hashcache import forget

        forget(workdir)


@app.command("check")
def check_cmd(
    workdir: Path = WORKDIR,
    target: Optional[str] = TARGET,
    platform: Optional[str] = PLATFORM,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too."),
    rehash: bool = REHASH,
    engine: str = typer.Option("auto", "--engine", envvar="ASCEND_BUILD_CHECK_ENGINE", help="Engine that reads the base image's Python (auto, docker, buildkit, podman), or none: then `python:` in the config is used."),
) -> None:
    """Identify, verify and select the packages for a target; check that they fit together."""
    from .catalog import check
    from .catalog.view import passed, render, to_json
    from .components.registry import components
    from .settings import Options, engine_for_check, image_python, settings_for

    from .publish import platforms_of

    _rehash(workdir, rehash)
    selections = []
    reader, why = engine_for_check(engine)
    for one in platforms_of(platform):
        settings = settings_for(workdir, Options(target=target, platform=one))
        selections.append(check(workdir, settings.spec, components(), settings.builtin_chain, settings.builtin_target,
                                settings.arch, image_python(settings, reader, why)))
    if json_out:
        print_json(to_json(selections[0]) if len(selections) == 1 else [to_json(s) for s in selections])
    else:
        for selection in selections:
            render(selection, make_console(), strict)
    if not all(passed(s, strict) for s in selections):
        raise typer.Exit(1)


@app.command()
def fetch(
    workdir: Path = WORKDIR,
    no_wait: bool = NO_WAIT,
    target: Optional[str] = TARGET,
    platform: Optional[str] = typer.Option(None, "--platform", help="Target platform: x86_64/aarch64 or linux/amd64, linux/arm64 (default: the config's arch, else this host)."),
    python: Optional[str] = typer.Option(None, "--python", help="The image's Python, e.g. 3.11 (default: the config's, else the folder's wheels')."),
    torch_npu: Optional[str] = typer.Option(None, "--torch-npu", help="torch_npu release (default: the folder's torch_npu, else the newest made for its CANN); torch follows it."),
    release: List[str] = typer.Option([], "--release", help="A stage's release, NAME=VERSION (e.g. mindspore=2.9.0; --torch-npu V is torch_npu=V); repeatable."),
    glibc: Optional[str] = typer.Option(None, "--glibc", help="The image's glibc, e.g. 2.35 (default: read from the base image, else 2.28)."),
    engine: str = typer.Option("auto", "--engine", envvar="ASCEND_BUILD_CHECK_ENGINE", help="Engine that reads the base image's Python and glibc (auto, docker, buildkit, podman), or none."),
    index_url: Optional[str] = typer.Option(None, "--index-url", help="Package index (default: the config's pip_index_url, else PyPI)."),
    torch_index_url: Optional[str] = typer.Option(None, "--torch-index-url", help="Index of torch's CPU build (default: PyTorch's CPU index, both arches)."),
    extra_index_url: List[str] = typer.Option([], "--extra-index-url", help="One more index, e.g. Huawei's for triton-ascend (the best version across all is taken); repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be downloaded, with sizes; write nothing."),
) -> None:
    """Download the target's Python wheels (torch, torch_npu, CANN's and the requirements' dependencies) into the folder."""
    from .fetch import FetchOptions, Limits, fetch as fetch_wheels, plan_fetch
    from .fetch.view import FetchView
    from .settings import engine_for_check, image_python

    limits = Limits.from_env(os.environ)
    with contextlib.nullcontext() if dry_run else _one_writer(workdir, no_wait):     # a dry run writes nothing
        releases = _named_releases(release) + ((("torch_npu", torch_npu),) if torch_npu else ())
        reader, why = engine_for_check(engine)
        the_plan = plan_fetch(workdir, FetchOptions(target=target, platform=platform, python=python, releases=releases,
                                                    index_url=index_url, torch_index_url=torch_index_url,
                                                    extra_index_urls=tuple(extra_index_url), glibc=glibc),
                              lambda settings: image_python(settings, reader, why))
        with FetchView(make_console()) as view:
            view.plan(the_plan)
            result = fetch_wheels(the_plan, view.on_wheel, view.resolved, limits, view.note, dry_run)
        view.summary(result, dry_run)


def _named_releases(given: List[str]) -> tuple:
    """--release NAME=VERSION words as (slot, version); a stage's slot names are its own."""
    from .components.registry import components

    slots = {s.name for c in components() for s in c.slots}
    found = []
    for word in given:
        name, _, version = word.partition("=")
        name = name.strip().replace("-", "_")
        if not version or name not in slots:
            raise ConfigError(f"--release {word!r}: expected NAME=VERSION with NAME one of {', '.join(sorted(slots))}",
                              fix="e.g. --release mindspore=2.9.0")
        found.append((name, version.strip()))
    return tuple(found)


@app.command()
def plan(
    workdir: Path = WORKDIR,
    target: Optional[str] = TARGET,
    delivery: str = DELIVERY,
    base_image: Optional[str] = BASE_IMAGE,
    platform: Optional[str] = PLATFORM,
    engine: Optional[str] = typer.Option(None, "--engine", help="Print what `build --engine E` runs (E: auto, docker, buildkit, podman); default: no engine."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the Dockerfile and scripts/ into this folder (must be new or empty)."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty (never over the working directory's own files)."),
    rehash: bool = REHASH,
) -> None:
    """Print the Dockerfile `build` would use (or write it and its scripts with -o DIR)."""
    from .engines.detect import choose
    from .outputs import inputs_of, write_folder
    from .plan import plan_for
    from .render import context_files
    from .settings import Options, settings_for
    from .workdir import State

    console = make_console()
    _rehash(workdir, rehash)
    options = Options(target=target, delivery=delivery, base_image=base_image, platform=platform)
    the_plan = plan_for(settings_for(workdir, options, choose(engine)[0] if engine else None))
    the_plan.cache_epoch = State.of(workdir).cache_epoch()      # as build renders it
    if engine:                          # what build would install on this host's CPU (native_install.py)
        from .native_install import for_build

        the_plan.native = for_build(the_plan, the_plan.settings.engine, lambda text: console.print(f"[dim]{escape(text)}[/]"))
    for warning in the_plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    files = context_files(the_plan)
    if output is None:
        write_out(files["Dockerfile"])
        console.print(f"[dim]scripts: {', '.join(sorted(n for n in files if n != 'Dockerfile'))} (write them with -o DIR)[/]")
        return
    write_folder(output, files, force, inputs_of(workdir))
    console.print(f"wrote {len(files)} files to {output}")


@app.command()
def build(
    workdir: Path = WORKDIR,
    no_wait: bool = NO_WAIT,
    target: Optional[str] = TARGET,
    tag: Optional[str] = _answered("tag", help="Image name:tag (default: ascend-build/<target>:<cann>-<chip>-py<python>-<arch>)."),
    engine: str = _answered("engine", help="auto, docker (classic builder), buildkit or podman."),
    docker_bin: Optional[str] = _answered("docker_bin", help="docker client to use (or ASCEND_BUILD_DOCKER)."),
    delivery: str = DELIVERY,
    network: Optional[str] = _answered("network", help="bridge (server on the bridge gateway) or host (server on 127.0.0.1)."),
    host: Optional[str] = _answered("host", help="Address the package server listens on (default: from --network)."),
    port: Optional[int] = _answered("port", help="Package server port (default: 3000, or a free one when 3000 is busy); 0 picks a free one; a busy port given here is an error."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build every stage again, once (a new cache epoch: later builds reuse those layers, never older ones)."),
    pull: str = _answered("pull", help="Base image: missing (pull when absent), always, never."),
    base_image: Optional[str] = BASE_IMAGE,
    platform: Optional[str] = PLATFORM,
    chip: Optional[str] = typer.Option(None, "--chip", help="Chip to build for, e.g. 910b, A3, 310p (overrides `chip:`; a matrix variant of bake)."),
    python: Optional[str] = typer.Option(None, "--python", help="The image's Python X.Y (overrides `python:`; a matrix variant of bake)."),
    report: Optional[Path] = _answered("report", help="Write the JSON report to this file."),
    json_out: bool = _answered("json_out", help="Print the JSON report on stdout."),
    verbose: bool = _answered("verbose", help="Show the engine's own output."),
    verify_after: bool = typer.Option(False, "--verify", help="Run `verify` on the image right after the build."),
    timings: bool = _answered("timings", help="Also print the seconds of each phase (config, check, engine probe, base image, context, server, engine, report)."),
    rehash: bool = REHASH,
    push: bool = typer.Option(False, "--push", help="Push the image (with the engine's own login); several --platform values imply it."),
    insecure_registry: bool = typer.Option(False, "--insecure-registry", help="The registry speaks plain HTTP (only for one on this host unless --allow-insecure-remote)."),
    allow_insecure_remote: bool = typer.Option(False, "--allow-insecure-remote", help="Allow --insecure-registry for a registry on another host."),
    cache_from: Optional[List[str]] = typer.Option(None, "--cache-from", help="Reuse the layers of this registry image (repeatable)."),
    cache_to: Optional[str] = typer.Option(None, "--cache-to", help="Push the layer cache here (BuildKit: an image with inline cache; podman: a repository)."),
) -> None:
    """Check, plan, serve and build the image; print a report. Several platforms
    (--platform linux/amd64,linux/arm64) build one image per arch and publish one tag."""
    with _one_writer(workdir, no_wait):
        import json

        from . import fastpath
        from .build import BuildOptions
        from .engines.detect import choose
        from .outputs import check_file, inputs_of, write_file
        from .progress import ConsoleBuildView
        from .publish import Publish, build_and_publish, platforms_of
        from .report import summary_table, timings_table
        from .settings import Options, settings_for
        from .spec import load_spec
        from .timings import Timings

        console = make_console()
        phases = Timings()
        with phases.phase("config"):
            pending = fastpath.begin(str(workdir), sys.argv[1:])      # before anything is read
            if report:
                check_file(report, True, inputs_of(workdir))
            _rehash(workdir, rehash)
            platforms = platforms_of(platform)
            spec = load_spec(workdir, base_image=base_image, chip=chip, python=python)
            if pending:
                pending.add_files([f for stage in spec.stages for f in stage.files] + spec.trusted_roots)
        with phases.phase("engine probe"):
            the_engine, why = choose(engine, docker_bin)
        with phases.phase("config"):
            settings = [settings_for(workdir, Options(target=target, delivery=delivery, base_image=base_image, platform=p,
                                                      network=network, host=host), the_engine, spec=spec) for p in platforms]
        options = BuildOptions(tag=tag, port=port, no_cache=no_cache, pull=pull, engine_reason=why,
                               cache_from=tuple(cache_from or ()), cache_to=cache_to)
        with ConsoleBuildView(console, verbose) as view:
            result = build_and_publish(settings, options, Publish(push, insecure_registry, allow_insecure_remote), view, phases)
        for one in result.get("platforms", [result]):
            console.print(summary_table(one))
            if timings:
                console.print(timings_table(one))
        for item in result.get("pushed", []):
            console.print(f"pushed {escape(item['ref'])} ({item['platform']}): {item['digest']}", soft_wrap=True)
        if report:
            write_file(report, json.dumps(result, indent=2) + "\n", True, inputs_of(workdir))
        fastpath.remember(pending, result, settings, port)
        if json_out:
            print_json(result)
        if verify_after:
            from .verify import verify

            for one in result.get("platforms", [result]):
                show_checks(verify(the_engine, one["image"]), json_out=False)


@app.command()
def serve(
    workdir: Path = WORKDIR,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: the docker bridge gateway, else 127.0.0.1)."),
    port: int = typer.Option(3000, "--port", help="Port to listen on; 0 picks a free one."),
    files: Optional[List[str]] = typer.Argument(None, metavar="FILE", help="Files to serve, inside the working directory (default: the packages `check` identifies there and in packages/)."),
) -> None:
    """Serve the packages to hand-written Dockerfiles (only those files, under a token path) until Ctrl-C."""
    from rich.markup import escape

    from .catalog.model import file_patterns
    from .catalog.scan import scan
    from .components.registry import components
    from .engines.docker import Docker
    from .server import PackageServer, files_to_serve, transfer_line
    from .workdir import State

    console = make_console()
    catalog = None if files else scan(workdir, file_patterns(components()))
    selected = files_to_serve(workdir, files, catalog)
    if catalog is not None:
        for problem in catalog.problems:
            console.print(f"[yellow]warning:[/] not served: {escape(problem.message)}", soft_wrap=True)
    if not host:
        host = Docker().bridge_address()
        if not host:
            host = "127.0.0.1"
            console.print("[yellow]warning:[/] no docker bridge gateway found: listening on 127.0.0.1 only"
                          " (pass --host ADDRESS for containers on a bridge)")
    with PackageServer(selected, host=host, port=port,
                       token=State.of(workdir).token(), on_transfer=lambda t: console.print(escape(transfer_line(t)), soft_wrap=True)) as server:
        console.print(f"serving {len(selected)} files at {escape(server.url)}", soft_wrap=True)
        for name in selected:
            console.print(f"  wget -q {escape(server.url_for(name))}", soft_wrap=True)
        console.print("[dim]only these files are served; Ctrl-C stops the server[/]")
        server.wait()


@app.command("verify")
def verify_image(
    image: str = typer.Argument(..., help="Image built by ascend-build."),
    engine: str = typer.Option("auto", "--engine", help="auto, docker, buildkit or podman."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Smoke-test an image: environment, versions, imports, leftovers, runtime user."""
    from .engines.detect import choose
    from .verify import verify

    result = verify(choose(engine)[0], image)
    show_checks(result, json_out)


def show_checks(result: dict, json_out: bool) -> None:
    from rich.table import Table

    if json_out:
        print_json(result)
    table = Table(title=f"verify {result['image']}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for item in result["checks"]:
        table.add_row(item["name"], "[green]ok[/]" if item["ok"] else "[bold red]FAILED[/]", item["detail"])
    make_console().print(table)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command(context_settings={"ignore_unknown_options": True})
def run(
    image: str = typer.Argument(..., help="Image to run."),
    command: Optional[List[str]] = typer.Argument(None, help="Command to run in the container (after --)."),
    print_only: bool = typer.Option(False, "--print", help="Print the command instead of running it."),
    profile: str = typer.Option("default", "--profile", help="default, mindie-service or vllm-serve (host network, 1g shm, whole driver), or multi-card (host network and IPC)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="NPU cards to pass, e.g. 0,1 (default: all)."),
    driver: Optional[str] = typer.Option(None, "--driver", help="whole (mount all of /usr/local/Ascend/driver, the default) or lib64 (its libraries only)."),
    ascend_runtime: Optional[bool] = typer.Option(None, "--ascend-runtime/--no-ascend-runtime", help="Use Ascend Docker Runtime (--runtime ascend -e ASCEND_VISIBLE_DEVICES) instead of device flags and mounts."),
    network: Optional[str] = typer.Option(None, "--network", help="host, bridge or none (default: the profile's, else the engine's)."),
    ipc: Optional[str] = typer.Option(None, "--ipc", help="host, private or shareable."),
    shm_size: Optional[str] = typer.Option(None, "--shm-size", help="Shared memory size, e.g. 16g."),
    user: Optional[str] = typer.Option(None, "--user", help="uid[:gid] or name[:group] to run as (e.g. 1000:1000, HwHiAiUser)."),
    engine_bin: str = typer.Option("docker", "--engine-bin", help="docker or podman."),
    no_doctor: bool = typer.Option(False, "--no-doctor", help="Start the container even when the host checks (`doctor`) find errors."),
    root: Path = typer.Option(Path("/"), "--root", hidden=True, help="Host root to look for devices in (tests)."),
) -> None:
    """Run an image with this host's Ascend devices and read-only driver mounts."""
    import shlex

    from .doctor import OK, doctor as host_checks, errors, image_facts, table
    from .engines.detect import for_binary
    from .errors import HostError
    from .runtime import BUSY_HINT, cards, run_args, run_options

    console = make_console()
    options = run_options(profile, devices=devices, driver=driver, ascend_runtime=ascend_runtime, network=network,
                          ipc=ipc, shm_size=shm_size, user=user)
    flags = run_args(root, options)
    engine = for_binary(engine_bin)
    cmd = engine.container_command(image, command or [], flags, interactive=True, tty=sys.stdin.isatty())
    if not cards(root):
        console.print("[yellow]no Ascend NPU on this host (/dev/davinci*): running without devices[/]")
    if print_only:
        write_out(shlex.join(cmd) + "\n")
        return
    if cards(root):                        # the host checks first: a clear reason instead of a failing container
        rows = [r for r in host_checks(root, image_facts(engine, image, user, required=False),
                                       multi_card=profile == "multi-card") if r.level != OK]
        if rows:
            console.print(table(rows))
        if errors(rows) and not no_doctor:
            raise HostError(f"the host is not ready for {image}: " + "; ".join(r.detail for r in errors(rows)),
                            fix="fix what the table says (`ascend-build doctor IMAGE` checks again), or pass --no-doctor")
    code = engine.attach(cmd)
    if code != 0 and command and command[0].endswith("npu-smi"):
        console.print(f"[dim]hint: {escape(BUSY_HINT)}[/]")
    raise typer.Exit(code)


@app.command()
def doctor(
    image: Optional[str] = typer.Argument(None, help="Image to check the host for (its CANN release and runtime user)."),
    host_root: Path = typer.Option(Path("/"), "--host-root", help="Read the host's files under this folder instead of / (a copy of another host's tree)."),
    profile: str = typer.Option("default", "--profile", help="multi-card also checks /etc/hccn.conf."),
    engine_bin: str = typer.Option("docker", "--engine-bin", help="docker or podman, to read IMAGE's labels."),
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON on stdout."),
) -> None:
    """Check this NPU host before the first run: driver vs the image's CANN, devices and their owners, npu-smi, runtime."""
    from .doctor import as_json, doctor as host_checks, errors, image_facts, table
    from .engines.detect import for_binary
    from .runtime import PROFILES

    if profile not in PROFILES:
        raise ConfigError(f"unknown run profile {profile!r}", fix=f"use one of: {', '.join(PROFILES)}")
    facts = image_facts(for_binary(engine_bin), image) if image else None
    rows = host_checks(host_root, facts, multi_card=profile == "multi-card")
    if json_out:
        print_json(as_json(rows, host_root, facts))
    else:
        console = make_console()
        console.print(table(rows))
        bad = errors(rows)
        console.print(f"[red]{len(bad)} error(s)[/]" if bad else "[green]the host is ready[/]"
                      + (f" for {escape(image)}" if image and not bad else ""))
    if errors(rows):
        raise typer.Exit(1)


@app.command("inspect")
def inspect_cmd(
    image: str = typer.Argument(..., help="Image built by ascend-build."),
    engine: str = typer.Option("auto", "--engine", help="auto, docker, buildkit or podman."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Components, sizes per stage and layers of an image built by ascend-build."""
    from rich.table import Table

    from .engines.detect import choose
    from .inspect_image import inspect_image
    from .units import human_bytes

    result = inspect_image(choose(engine)[0], image)
    if json_out:
        print_json(result)
        return
    console = make_console()
    console.print(f"[bold]{image}[/]  target {result['target']}, {human_bytes(result['size_bytes'])} "
                  f"(base {result['base_image']}: {human_bytes(result['base_size_bytes'])})")
    table = Table("component", "version", "file", "sha256", title="components", title_justify="left")
    for item in result["components"]:
        table.add_row(item["name"], item.get("version", ""), item.get("file", ""), item.get("sha256", "")[:16])
    console.print(table)
    stages = Table("stage", "size", title="stages (layers added)", title_justify="left")
    for item in result["stages"]:
        stages.add_row(item["name"], human_bytes(item["size_bytes"]))
    console.print(stages)


@app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write (must be new or empty)."),
    workdir: Path = WORKDIR,
    target: Optional[str] = TARGET,
    base_image: Optional[str] = BASE_IMAGE,
    platform: Optional[str] = PLATFORM,
    force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty (never over the working directory's own files)."),
) -> None:
    """Write a standalone Dockerfile + dockerbuild.sh + install scripts (needs only docker, bash, python3)."""
    from .export import export
    from .plan import plan_for
    from .settings import Options, settings_for

    options = Options(target=target, delivery="http", base_image=base_image, platform=platform)
    written = export(plan_for(settings_for(workdir, options)), workdir, output, force)
    make_console().print(f"wrote {len(written)} files to {output}; build with: bash {output}/dockerbuild.sh --help")


@app.command("bake")
def bake_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="The docker-bake.json to write (must be new)."),
    workdir: Path = WORKDIR,
    no_wait: bool = NO_WAIT,
    target: Optional[str] = TARGET,
    force: bool = typer.Option(False, "--force", help="Replace an existing file (never one of the working directory's own files)."),
) -> None:
    """Write a buildx bake file for the config's matrix (chip x arch x python)."""
    with _one_writer(workdir, no_wait):
        from .bake import bake, write_bake
        from .catalog.select import build_arch
        from .outputs import check_file, inputs_of
        from .spec import load_spec

        inputs = inputs_of(workdir)
        check_file(output, force, inputs)
        spec = load_spec(workdir)
        data, warnings = bake(workdir, spec, target or spec.target, build_arch(None, None), _engine_if_any())
        write_bake(data, output, force, inputs)
        console = make_console()
        for warning in warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        console.print(f"wrote {output}: {len(data['group']['default']['targets'])} variants; "
                      f"build with: docker buildx bake -f {output}")


def _engine_if_any():
    """The local engine, to look up base images in; None when none answers (bake needs none)."""
    from .engines.detect import choose

    try:
        return choose("auto")[0]
    except AscendBuildError:
        return None


data_app = typer.Typer(help="The tables from Huawei's ascend-deployer: published sha256, driver per CANN, release pairs.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("update")
def data_update(
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Read this ascend-deployer wheel (offline sites) instead of downloading the newest."),
    index_url: Optional[str] = typer.Option(None, "--index-url", help="Package index to take ascend-deployer from (default: PyPI)."),
) -> None:
    """Update the tables from the newest ascend-deployer into the user's data folder."""
    from .fetch import _url
    from .fetch.deployer_update import from_index, from_wheel
    from .fetch.view import FetchView

    console = make_console()
    if wheel is not None:
        updated = from_wheel(wheel)
    else:
        with FetchView(console) as view:
            updated = from_index(_url(index_url, "--index-url"), view.on_wheel)
    data = updated.data
    if updated.path is None:
        console.print(f"{escape(data['source'])} is not newer than the data in use ({escape(updated.before)}): nothing changed")
        return
    drivers = ", ".join(f"CANN {c} -> driver {d}" for c, d in data["cann_driver"].items())
    console.print(f"[green]updated[/] {escape(updated.path.as_posix())} from {escape(data['source'])} (sha256 "
                  f"{data['sha256'][:16]}...): {len(data['files'])} published files, {escape(drivers) or 'no driver rows'}, "
                  f"release pairs ({', '.join(f'{len(v)} {k}' for k, v in data['pairs'].items()) or 'none'}); "
                  f"was {escape(updated.before)}")


@data_app.command("show")
def data_show(json_out: bool = typer.Option(False, "--json", help="Print the tables' summary as JSON on stdout.")) -> None:
    """Print the tables in use and where they come from."""
    from rich.table import Table

    from .catalog.deployer import current
    from .catalog.versions import version_key

    data, where = current()
    summary = {"source": data["source"], "from": where, "sha256": data.get("sha256"), "date": data.get("date"),
               "files": len(data["files"]), "cann_driver": data.get("cann_driver", {}), "pairs": data.get("pairs", {})}
    if json_out:
        print_json(summary)
        return
    console = make_console()
    console.print(f"data: {escape(where)}; {summary['files']} published files")
    pairs = summary["pairs"]
    table = Table("CANN", "driver (NPU) it requires", *pairs)
    for cann in sorted(set(summary["cann_driver"]) | {c for p in pairs.values() for c in p.values()}, key=version_key):
        table.add_row(cann, summary["cann_driver"].get(cann, ""),
                      *(", ".join(sorted((r for r, c in pairs[k].items() if c == cann), key=version_key)) for k in pairs))
    console.print(table)


@app.command("save")
def save_cmd(
    images: List[str] = typer.Argument(..., metavar="IMAGE...", help="Images to save: NAME:TAG in the engine's store, or REGISTRY/NAME:TAG (a manifest list there: every arch)."),
    output: Path = typer.Option(..., "-o", "--output", help="The archive to write (must be new unless --force)."),
    engine: str = typer.Option("auto", "--engine", help="Engine whose store images come from: auto, docker, buildkit or podman."),
    source: str = typer.Option("auto", "--from", help="auto (a registry's copy when the name has a registry that has it, else the engine's), engine or registry."),
    insecure_registry: bool = typer.Option(False, "--insecure-registry", help="The registry speaks plain HTTP (only for one on this host)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    json_out: bool = typer.Option(False, "--json", help="Print what the archive holds as JSON on stdout."),
) -> None:
    """Write images into one archive for an air-gapped host (OCI layout + SHA256SUMS of every blob)."""
    from .airgap.transfer import SaveRequest, save
    from .airgap.view import TransferView
    from .engines.detect import choose
    from .engines.skopeo import Skopeo
    from .outputs import inputs_of
    from .units import human_bytes

    console = make_console()
    request = SaveRequest(tuple(images), output, source, insecure_registry, force, inputs_of(Path(".")))
    with TransferView(console) as view:
        result = save(request, lambda: choose(engine)[0], Skopeo.find(), view)
    for image in result["images"]:
        console.print(f"saved {escape(image['ref'])} ({', '.join(image['platforms'])}) from {escape(image['source'])}: "
                      f"{image['digest']}", soft_wrap=True)
    console.print(f"wrote {escape(str(output))}: {human_bytes(result['size_bytes'])}, {result['blobs']} blobs; "
                  f"on the other host: ascend-build load {escape(output.name)}", soft_wrap=True)
    if json_out:
        print_json(result)


@app.command("load")
def load_cmd(
    archive: Path = typer.Argument(..., metavar="FILE", help="An archive `ascend-build save` wrote."),
    push: Optional[str] = typer.Option(None, "--push", help="Push to REGISTRY/NAME:TAG (every arch of a list) instead of loading into the engine."),
    image: Optional[str] = typer.Option(None, "--image", help="Only this image of the archive (--push needs one when it holds several)."),
    engine: str = typer.Option("auto", "--engine", help="Engine to load into: auto, docker, buildkit or podman."),
    insecure_registry: bool = typer.Option(False, "--insecure-registry", help="The registry speaks plain HTTP (only for one on this host unless --allow-insecure-remote)."),
    allow_insecure_remote: bool = typer.Option(False, "--allow-insecure-remote", help="Allow --insecure-registry for a registry on another host."),
    temp_dir: Optional[Path] = typer.Option(None, "--temp-dir", help="Where the archive is unpacked and checked (default: TMPDIR, else /var/tmp); removed after."),
    json_out: bool = typer.Option(False, "--json", help="Print what was loaded or pushed as JSON on stdout."),
) -> None:
    """Check every blob of an archive (sha256 and size), then load its images into the engine or push them."""
    from .airgap.transfer import LoadRequest, load
    from .airgap.view import TransferView
    from .engines.detect import choose
    from .engines.skopeo import Skopeo

    console = make_console()
    request = LoadRequest(archive, push, image, insecure_registry, allow_insecure_remote, temp_dir)
    with TransferView(console) as view:
        result = load(request, lambda: choose(engine)[0], Skopeo.find(), view)
    for item in result.get("loaded", []):
        console.print(f"loaded {escape(item['ref'])} ({item['platform']}): image id {item['image_id']}", soft_wrap=True)
    for item in result.get("pushed", []):
        console.print(f"pushed {escape(item['ref'])} ({', '.join(item['platforms'])}): {item['digest']}", soft_wrap=True)
    if json_out:
        print_json(result)


@app.command()
def schema() -> None:
    """Print the JSON schema of ascend-build.yaml."""
    from .spec import schema as spec_schema

    print_json(spec_schema())


STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """The first Ctrl-C (or SIGTERM, SIGHUP) stops the command; the ones after it, while it cleans up
    (server, engine process, containers), are noted and do not cut that cleanup short."""
    for sig in STOPPING:
        signal.signal(sig, _cleaning_up)
    raise Interrupted("interrupted")


def _cleaning_up(signum, frame):  # noqa: ARG001 - signal handler signature
    with contextlib.suppress(OSError):
        os.write(2, b"interrupted: cleaning up (the package server, the engine process, containers), a moment\n")


def main() -> None:
    """Entry point: every user error becomes one message and an exit code, never a traceback."""
    for sig in STOPPING:            # a supervisor's SIGTERM, a closed terminal's SIGHUP: as Ctrl-C
        signal.signal(sig, _interrupt)
    console = make_console()
    try:
        app()
    except AscendBuildError as err:
        with contextlib.suppress(OSError):          # stderr gone (a closed terminal): the exit code still says it
            console.print(f"[bold red]error:[/] {escape(err.message)}")
            if err.fix:
                console.print(f"[yellow]fix:[/] {escape(err.fix)}")
        sys.exit(err.exit_code)
