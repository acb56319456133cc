"""`build --push` and builds for several platforms: one build per arch (tagged TAG-amd64,
TAG-arm64 when there are several), each pushed with the engine's own login, then one manifest
list under TAG; the layer cache shared through a registry (--cache-from / --cache-to)."""
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

from .build import BuildOptions, BuildView, run_build
from .catalog.select import build_arch
from .engines import registry
from .engines.base import Engine
from .errors import ConfigError
from .plan import plan_for
from .platforms import PLATFORMS
from .settings import Settings
from .timings import Timings


@dataclass(frozen=True)
class Publish:
    push: bool = False
    insecure_registry: bool = False        # plain HTTP / unverified TLS (manifest and podman commands)
    allow_insecure_remote: bool = False    # ... also for a registry that is not on this host


def platforms_of(text: Optional[str]) -> List[Optional[str]]:
    """`--platform linux/amd64,linux/arm64` -> each platform once; [None] (this host) when not given."""
    if not text:
        return [None]
    found = [p.strip() for p in text.split(",") if p.strip()]
    arches = [build_arch(p, None) for p in found]
    if len(set(arches)) != len(arches):
        raise ConfigError(f"--platform {text} names an arch twice", fix="give each platform once, e.g. linux/amd64,linux/arm64")
    return found


def check_publish(engine: Engine, platforms: int, opts: BuildOptions, publish: Publish) -> None:
    """Every refusal before the first build: a push needs a tag, several platforms a registry in
    it, --insecure-registry a registry on this host, --cache-to an engine that exports a cache."""
    if (publish.push or platforms > 1) and not opts.tag:
        raise ConfigError("a pushed image needs the name to push it under",
                          fix="give it with -t REGISTRY/NAME:TAG, e.g. -t 127.0.0.1:5000/app:1.0")
    if platforms > 1 and not registry.registry_of(opts.tag):
        raise ConfigError(f"a build for several platforms publishes one tag in a registry, and {opts.tag} names none",
                          fix="-t REGISTRY/NAME:TAG, e.g. -t 127.0.0.1:5000/app:1.0 (several platforms imply --push)")
    for ref in filter(None, (opts.tag if publish.push or platforms > 1 else None, opts.cache_to)):
        registry.check_insecure(registry.registry_of(ref), publish.insecure_registry, publish.allow_insecure_remote)
    if opts.cache_to and not engine.cache_export:
        raise ConfigError(f"--cache-to needs BuildKit or podman; {engine.binary} uses the classic builder",
                          fix="use --engine buildkit (inline cache in the pushed image) or --engine podman")


def build_and_publish(settings_list: List[Settings], opts: BuildOptions, publish: Publish, view: BuildView,
                      timings: Optional[Timings] = None) -> dict:
    """Build each settings' arch (and push); with several, publish the manifest list. The report
    of the one build, or {image, manifest_digest, platforms: [reports], pushed}. `timings` holds
    the phases measured before (config, engine probe): they go into the first build's report."""
    engine = settings_list[0].engine
    multi = len(settings_list) > 1
    check_publish(engine, len(settings_list), opts, publish)
    if multi:
        for settings in settings_list:     # the packages of every arch, before any build
            plan_for(settings)
    reports = []
    for settings in settings_list:
        arch_opts = _per_arch(opts, settings.arch, engine) if multi else opts
        if engine.pulls_cache_from:
            for ref in arch_opts.cache_from:
                view.info(f"pulling {ref} for --cache-from" if engine.pull(ref).returncode == 0 else f"warning: could not pull {ref}")
        report = run_build(settings, arch_opts, view, timings if not reports else None)
        opts = replace(opts, no_cache=False)    # the first build's new cache epoch is new to every arch
        report["pushed"] = _push(settings, arch_opts, report["image"], publish.push or multi, publish, view)
        reports.append(report)
    if not multi:
        return reports[0]
    images = {s.arch: r["image"] for s, r in zip(settings_list, reports)}
    digest = engine.publish_manifest(opts.tag, list(images.values()), publish.insecure_registry)
    view.info(f"published {opts.tag} {digest} (manifest list: {', '.join(PLATFORMS[a] for a in images)})")
    pushed = [p for r in reports for p in r["pushed"]]
    return {"image": opts.tag, "manifest_digest": digest, "platforms": reports,
            "pushed": [*pushed, {"ref": opts.tag, "platform": "manifest list", "digest": digest}]}


def _per_arch(opts: BuildOptions, arch: str, engine: Engine) -> BuildOptions:
    """Per-arch tags; an inline cache lives in per-arch images too (podman's cache repository is
    keyed by content)."""
    if not engine.inline_cache:
        return replace(opts, tag=registry.arch_ref(opts.tag, arch))
    return replace(opts, tag=registry.arch_ref(opts.tag, arch),
                   cache_from=tuple(registry.arch_ref(ref, arch) for ref in opts.cache_from),
                   cache_to=registry.arch_ref(opts.cache_to, arch) if opts.cache_to else None)


def _push(settings: Settings, opts: BuildOptions, image: str, push: bool, publish: Publish, view: BuildView) -> List[dict]:
    """Push the image when asked; an inline cache is pushed as the --cache-to image."""
    engine = settings.engine
    refs: List[Tuple[str, str]] = [(image, settings.platform or PLATFORMS[settings.arch])] if push else []
    if opts.cache_to and engine.inline_cache and opts.cache_to not in (r for r, _ in refs):
        if opts.cache_to != image:
            engine.tag(image, opts.cache_to)
        refs.append((opts.cache_to, "cache"))
    pushed = []
    for ref, what in refs:
        view.info(f"pushing {ref}")
        digest = engine.push(ref, publish.insecure_registry)
        view.info(f"pushed {ref} {digest}")
        pushed.append({"ref": ref, "platform": what, "digest": digest})
    return pushed
