"""`ascend-build export -o DIR`: a standalone folder in the shape of the original guide
(Dockerfile, dockerbuild.sh, install_<stage>.sh, requirements, README) that needs only docker,
bash and python3."""
import json
from pathlib import Path
from typing import Dict, List

from . import __version__
from .outputs import Content, inputs_of, write_folder
from .plan import Plan
from .render import context_files, template
from .stage_env import capture_script

README = """# Exported Ascend image build ({target})

Made by `ascend-build export` {version}. Needs only docker, bash and python3:

    bash dockerbuild.sh --help
    bash dockerbuild.sh --target {target}

`dockerbuild.sh` serves the files listed in `packages.txt` (from `--packages DIR`) with
`python3 -m http.server` on the docker bridge address, builds the stage you ask for with
`docker build --target`, stops the server on every exit, and prints the image's size and
labels. A stage that sources set_env.sh files after it installs (the Dockerfile's
"# after install: source ..." lines) is built first: `scripts/capture-env.py` sources them in
that image and the environment they give becomes the stage's ENV, so that
`docker run IMAGE python3 -c "import ..."` works without sourcing anything. Each install step downloads its files, checks their sha256 (written in the Dockerfile,
so a changed file never reuses an old layer), installs them and deletes them in the same RUN.
"""


def export(plan: Plan, workdir: Path, output: Path, force: bool = False) -> List[Path]:
    files = context_files(plan, pkg_url_default="http://172.17.0.1:3000/")
    texts: Dict[str, Content] = dict(files)
    served = plan.served_files()
    texts["packages.txt"] = "".join(f"{n}\n" for n in served)
    texts["scripts/capture-env.py"] = capture_script()
    captures = [(s.name, json.dumps([step.line for step in s.set_env])) for s in plan.stages if s.set_env]
    texts["dockerbuild.sh"] = template("dockerbuild.sh.j2").render(
        version=__version__, target=plan.target, base_image=plan.spec.base_image,
        packages=str(Path(workdir).resolve()), stages=[s.name for s in plan.stages], captures=captures)
    texts["README.md"] = README.format(target=plan.target, version=__version__)
    texts.update({name: pkg.path for name, pkg in served.items() if pkg.format == "txt"})
    return write_folder(output, texts, force, inputs_of(workdir), modes={"dockerbuild.sh": 0o755})
