"""A build context on disk: the rendered Dockerfile and scripts, plus hard links of the packages
for mount and copy delivery (copies when a link is impossible; a symbolic link's target, never
the link)."""
import shutil
from pathlib import Path
from typing import Dict, Optional

from .outputs import link_or_copy
from .plan import Plan
from .render import context_files, context_packages
from .statefiles import remove_quietly, state_error


def write_context(ctx: Path, plan: Plan, external_base: Optional[str] = None,
                  captured: Optional[Dict[str, Dict[str, str]]] = None) -> Path:
    try:
        if ctx.is_symlink() or ctx.is_file():
            ctx.unlink()
        shutil.rmtree(ctx, ignore_errors=True)
        for name, text in context_files(plan, external_base=external_base, captured=captured).items():
            (ctx / name).parent.mkdir(parents=True, exist_ok=True)
            (ctx / name).write_text(text)
        for name, source in context_packages(plan).items():
            (ctx / name).parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source, ctx / name)
    except OSError as err:
        remove_quietly(ctx)                    # a disk that filled up half-way leaves no half a context
        raise state_error(ctx, err) from None
    return ctx
