"""Where an arm64 build spends its time under QEMU, against the same content for amd64 (issue #24, "measure first").

Content: `ascend-build init --demo DIR --arch {aarch64,x86_64} --cann 8.0.RC2 --filler 4MiB` stand-ins plus a real
pure-Python closure (sympy, mpmath, networkx, jinja2, markupsafe, filelock, fsspec, typing_extensions; wheels for
each arch and Python 3.11, downloaded once into ~/.cache/ascend-build-tests/closure/) required by requirements.txt.
Run by hand, one benchmark at a time (docker daemon, QEMU binfmt, both base images):

    .venv/bin/python benchmarks/bench_arch.py [--runs 3] [--parts builds,steps] [--filler 4MiB]   # whole builds, then per step
    .venv/bin/python benchmarks/bench_arch.py --runs 3 --parts builds              # the ratios with the native install
    .venv/bin/python benchmarks/bench_arch.py --prototype [--runs 3]               # native helper stage vs emulated pip
    .venv/bin/python benchmarks/bench_arch.py --runs 2 --parts real,mindspore       # the real pta and MindSpore stacks, arm64 only

builds: `build --platform P --engine buildkit --no-cache --timings --report R.json` of each folder from scratch:
arm64 with the native install (the tool's default), arm64 fully emulated (ASCEND_BUILD_NATIVE_INSTALL=off) and
amd64, in turn (the order rotates per run), one uncounted warm-up round; it prints arm64/amd64 for both arm64 ways
and native/emulated (ratio of the medians, with the per-run ratios). steps: the stage scripts' commands by hand, each timed, in
`docker run --platform P` containers of the base image, packages served on the docker bridge. prototype: see
Prototype. Everything made (folders, images, servers) is removed at the end.

Result (2 shared cores, docker 20.10 BuildKit, qemu-aarch64 user mode; medians in s; 3 counted build runs, the
steps from 1 run, the prototype from 2; the machine was shared, so read ratios rather than absolute seconds):

  whole build, per stage        arm64    amd64   ratio
    base                          0.7      0.1    ~5
    cann                         36.4      4.9    7.4
    pta                          16.1      2.9    5.5
    mindie                        8.9      1.4    6.3
    ENV capture after cann        1.8      1.4    1.3   (image export + capture container + rmi)
    ENV capture after mindie      1.3      0.9    1.4
    last (cached) engine build    0.3      0.2
    total (wall)                 66.5     13.0    5.1

  per step                      arm64    amd64   ratio
    cann  download (wget x5)      0.76     0.09    8.6
          sha256 (5 files)        0.39     0.05    7.5
          pip mpmath+sympy       27.4      4.3     6.3   <- 75% of the arm64 stage: sympy's byte code
          toolkit .run --install  1.20     0.10   11.4   (--check alone 0.48; payload untar 1.05)
          kernels .run            1.24     0.12   10.8
          nnal .run               1.49     0.11   13.8
    pta   download / sha256       1.27/0.46 0.11/0.04
          pip torch+npu+closure  10.4      1.4     7.5
          pip -r requirements     3.2      0.39    8.1   (nothing to install: pip's start-up and resolve alone)
          import torch (ABI)      0.26     0.02   15
    mindie download / sha256      1.48/0.47 0.14/0.06    (the closure's wheels are downloaded again here)
          mindie .run             4.05     0.48    8.4   (it imports torch and pip-installs its own wheels)
          atb untar / pip         0.14/2.74 0.02/0.49
    ENV capture (source, env)     0.63     0.08    7.6
    imports: python3 -c pass      0.29     0.02   14;  sympy 2.29/0.36, networkx 1.47/0.23, jinja2 0.81/0.12
    pip, all 10 wheels, default  37.3      6.1     6.2
      the same --no-compile       6.5      1.6     4.2
      then compileall (-j1)      33.9      5.9     5.7   (-j0: 32.2/5.8; 2,358 .pyc)
      import sympy without .pyc   8.4      1.5     (what skipping compilation would cost at every start)

  Under QEMU the build is 5x slower as a whole; bytecode compilation by pip dominates: about 31 of the 37 s pip
  spends on the closure (83%); pip is ~44 of the 62 s of arm64 stage time, its compilation ~31 s of that (the
  cann stage's 27 s pip is almost all sympy's byte code).
  Small emulated processes (sha256sum, wget, tar, bash, python start-up 0.3 s) are 8-15x slower but add up to
  ~10 s; the .run installers ~1.2-1.5 s each with 4 MiB fillers (they verify the payload, then untar it); the ENV
  capture is not emulation-bound (~1.3-1.8 s per stage, mostly image export and container start). The tool's own
  phases are 0.1 s. `python3 -m compileall -j0` does not help on 2 cores. Skipping compilation is no fix: every
  start then pays it (import sympy 8.4 s vs 2.3 s).

  prototype (arm64 closure's 8 wheels)          install steps   docker build wall
    emulated pip in the arm64 stage (today)         38.4            39.3
    native helper, pip --target --no-compile
      + compileall at the final path, COPY          12.2 (0.32x)    14.1 (0.36x)
    native helper, pip --target with pip's own
      compile (.pyc co_filename = pip's temp dir)    7.5 (0.20x)     8.5 (0.23x)
  Trees (dist-packages, /usr/local/bin, /usr/local/share; read with `docker cp` on the host): same 4,829 file
  names, modes and sizes; every non-.pyc file identical except each dist-info RECORD (it lists no .pyc when
  compileall ran after pip; sympy's has ../../bin/isympy and ../../share/man/man1/isympy.1 instead of
  ../../../, so `pip uninstall sympy` there would leave isympy and its man page); INSTALLER (pip) and
  direct_url.json identical; the isympy shebang is /usr/bin/python3 in both. Data files (share/man) land inside
  the --target folder and must be moved. .pyc: same magic and flags; 2,316 differ only in the source-mtime field
  (valid: COPY keeps the sources' mtimes), 40 in code bytes (marshal's reference flags, not behaviour); with
  pip's own compile under --target all 2,356 differ in co_filename (pip's temp dir; importlib fixes it at load).
  `pip list` in both images: identical. The helper's Python must be the same 3.x minor (here both 3.11.2).

  With the native install (issue 24; `--runs 3 --parts builds`, 2 cores, nothing else running; medians, per-run
  min/median/max of the ratios). Since `--no-cache` is a new cache epoch, each stage is built once per run; before,
  every engine build of the run (two set_env.sh captures, then the image) built every stage again, so cann ran
  three times (then: arm64 68.8 s, emulated 161.3 s, amd64 28.0 s, ratio 2.46 with the native install).

  whole build, per stage        arm64 native   arm64 emulated   amd64   native/amd64   emulated/amd64
    base                              1.0             0.6         0.15
    cann (under QEMU)                 6.1            29.5         4.5      1.36             6.60
      + its 2 wheels on this CPU      5.9 (before it: sympy's 1,620 .pyc, compiled on both CPUs)
    pta  (under QEMU)                 3.2            14.6         2.1      1.53             6.86
      + its 7 wheels on this CPU      4.2 (in cann's capture build, beside cann's installers: stage ab-capture)
    mindie                            7.8             7.6         1.4      5.75             5.65   (untouched: .run + pip)
    capture after cann                7.2 (the cann helper included)   1.5   1.0
    capture after mindie              1.4             1.5         0.7
    total (wall)                     27.1            55.9        10.3      2.62 (2.58/2.62/2.69)   5.41 (5.39/5.41/5.51)
    native / emulated (arm64, wall)  0.48 (0.48/0.48/0.49)
  Step by step the same session: the cache epoch (each stage once) 68.8 -> 29.7 s; the helper's byte code on both
  CPUs and its pip before the scheme 29.7 -> 29.5 s (sympy+mpmath placed in 2.0 s instead of 4.2 s alone, less
  with the pta helper beside it); the later helpers in cann's capture build 29.5 -> 27.1 s (the machine's amd64
  build also went from 11.3 to 10.3 s between those runs, so read the ratios).
  What stays under QEMU: the .run installers (~1.2-1.5 s each with 4 MiB payloads; their sha256 and gunzip run
  3.4x slower than natively, 2.0 vs 0.6 s per 200 MB, which is what multi-GB real installers pay), the mindie stage
  (its .run imports torch, then pip installs the ATB wheel and its requirements: not moved, since its pip runs
  after its installer), pip check in the two stages (~2.4 s each), the torch ABI check, the ENV captures (a
  python3 and the set_env.sh files, ~1 s each). The stages the native install covers are at 1.2-1.5x of amd64; the
  whole build at 2.6x. Under the contract, the floor with every .run and check emulated is about amd64 + 12 s
  (.run installers +7 s, two pip checks +4 s, captures +1 s): ~2x for this content, so 1.5x is out of reach
  without running the installers' byte work natively.

  Then the installers' byte work on this CPU (stage native-tools: the host image's coreutils, diffutils, findutils,
  grep, gzip, sed and tar, mounted while cann and mindie install; same package versions as the image's). By hand
  first, the same .run in an arm64 container with and without them: toolkit 64 MiB 3.7 -> 1.2 s, kernels 3.3 ->
  1.4 s, mindie 7.2 -> 4.2 s (a loaded machine); sha256sum of 200 MB 2.8 -> 0.6 s, gunzip 2.3 -> 0.7 s, 50 mkdir
  1.6 -> 0.16 s; the installed trees equal (names, modes, owners, sizes, sha256). `--runs 3 --parts builds`:

  whole build, per stage        arm64 native   arm64 emulated   amd64   native/amd64   emulated/amd64
    base                              1.75            0.75        0.13
    cann (under QEMU)                 4.37           33.14        4.75      0.92             6.98
      + its 2 wheels on this CPU      6.75
    pta  (under QEMU)                 3.56           16.76        2.41      1.48             6.95
      + its 7 wheels on this CPU      4.99 (in cann's capture build)
    mindie                            7.44            8.47        1.35      5.51             6.27
    capture after cann                7.52            1.51        1.16
    capture after mindie              1.60            1.38        0.81
    total (wall)                     26.80           62.90       11.25      2.38 (2.30/2.36/2.49)   5.59 (5.54/5.58/5.97)
    native / emulated (arm64, wall)  0.43 (0.39/0.43/0.45)
  The same with 64 MiB per installer (`--filler 64MiB --runs 2`): cann 8.12 / 41.45 / 7.63 s (native/amd64 1.06),
  pta 3.63 / 20.28 / 3.46 (1.05), mindie 10.22 / 12.99 / 3.05 (3.35); total 34.66 / 80.35 / 17.97 s:
  arm64/amd64 1.93 (1.85/1.93/2.01), fully emulated 4.47, native/emulated 0.43. The stages the native install
  covers are at amd64's speed; what is left is mindie (its .run imports torch and pip-installs its wheels, then
  the ATB wheel's pip install and pip check, all Python under QEMU), the helpers' start (cann's 2 wheels take 6.8 s
  on this CPU before cann's installers can start: they need them) and the captures.

  Then (`--runs 3 --parts builds`, a noisier day: amd64 12.4 s, emulated arm64 66-82 s) the served stages check
  their wheels with pip check's rule without pip's start-up (native-stage.py check: 1.2 s under QEMU where
  `python3 -m pip check` took 2.0-2.5 s), each helper places its wheels at once where its own pip puts
  them and checks that against the image's answer after (no wait for base and the emulated scheme stage), and each
  helper starts after the one before it (cann's alone: 5.5 s instead of 6.9 s sharing the CPUs with pta's):

  whole build, per stage        arm64 native   arm64 emulated   amd64   native/amd64   emulated/amd64
    base                              1.40            0.74        0.15
    cann (under QEMU)                 3.19           39.64        5.15      0.62             7.70
      + its 2 wheels on this CPU      5.45
    pta  (under QEMU)                 2.26           18.88        2.73      0.83             6.92
      + its 8 wheels on this CPU      7.84 (from its start, waiting for cann's helper; in cann's capture build)
    mindie                            8.27           10.26        1.39      5.95             7.38
    capture after cann                7.04            1.73        1.28
    capture after mindie              1.83            1.72        1.03
    total (wall)                     24.98           73.95       12.37      2.02 (1.95/1.98/2.02)   5.98 (5.10/5.98/6.66)
    native / emulated (arm64, wall)  0.34 (0.29/0.34/0.39)
  (the check and the placement alone, before the helpers' order, `--runs 3`: 25.53 / 68.01 / 12.46 s, 2.05.)
  What is left of the 12.6 s between arm64 and amd64: the mindie stage (+6.9 s: its .run imports torch and
  pip-installs its own wheel, then the image's pip installs the ATB wheel, ~3 s of pip start-up and install under
  QEMU; 12 downloads by the emulated wget, 0.7 s), base (+1.3 s: the first emulated RUN), cann's helper (5.5 s)
  before cann's installers, which need its wheels (amd64's cann stage does the same pip work inside), the emulated
  checks (1.2 s each) and the set_env.sh captures (+0.6 s). 1.5x would need the mindie stage's Python natively:
  the installer's own pip runs inside it, and the ATB wheel comes out of the tarball after it.
  The real pta stack the same day (`--parts real --runs 2`): cann under QEMU 3.58 s (+ its 19 wheels on this CPU
  8.34 s), pta under QEMU 14.90 s (the check and the torch ABI import, real torch under QEMU; + its 8 wheels 19.05 s
  from its start, after cann's helper), total 43.47 s against 155.06 s fully emulated: 0.28 (0.27/0.28/0.29; last
  round 56.5 s, 0.35).

  The real pta stack (`--parts real --runs 2`: stand-in CANN 8.5.0 with the real torch 2.6.0, torch_npu 2.6.0.post5
  and their 25 aarch64 wheels; `build --target pta --no-cache`, arm64 only: the real x86_64 torch is the CPU
  index's, and download.pytorch.org does not resolve from this machine, so there is no amd64 side):
    stage cann under QEMU        native  6.9 s (+ its 19 wheels on this CPU 35.4 s, waiting included)   emulated 50.3 s
    stage pta under QEMU         native 13.0 s (pip check + the torch ABI import; + 8 wheels natively 14.1 s) emulated 57.0 s
    total (wall)                 native 56.5 s   emulated 163.1 s   ratio 0.35 (per run 0.33/0.35/0.36)
  Again with the byte code compiled on both CPUs (a slower day for the machine: the emulated pta stage took 77 s):
    stage cann under QEMU        native  8.2 s (+ its 19 wheels on this CPU 7.9 s)   emulated 74.0 s
    stage pta under QEMU         native 22.1 s (+ its 8 wheels on this CPU 13.2 s)   emulated 77.0 s
    total (wall)                 native 61.8 s   emulated 158.2 s   ratio 0.39 (per run 0.39/0.39/0.40)
  The two images (one each way, read by hand): 27,301 files under the Python prefix with the same names, modes,
  owners, sizes and sha256 (RECORD included) but for 106 .pyc whose code bytes differ (marshal's reference
  flags), and the same `pip list`.

  The real MindSpore stack (`--parts mindspore --runs 2`: stand-in CANN 9.0.0, the real mindspore 2.10.0 wheel,
  355 MiB, cp311-none-any with aarch64 code, and its closure; `build --target mindspore --no-cache`, arm64 only),
  once the mindspore stage got the native install too (it was fully emulated: 52-55 s):
    stage cann under QEMU        native  3.81 s (+ its 19 wheels on this CPU 8.70 s)      emulated 73.19 s
    stage mindspore under QEMU   native  4.05 s (+ its 7 wheels 21.21 s from its start, after cann's helper)   emulated 54.54 s
    total (wall)                 native 39.69 s   emulated 137.12 s   ratio 0.29 (0.27/0.29/0.31)
  The helper places its files as hard links to pip's --target tree (which settle needs only when the image's pip
  puts files elsewhere): copying mindspore's 1.4 GB tree was 2-3 s of its 21-24 s, and the disk held it twice.
  The benchmark's content the same day (`--runs 2 --parts builds`), with the hard links: cann's helper 4.75 s (5.45 s
  copying), arm64 23.52 s, emulated 68.24 s, amd64 12.26 s: arm64/amd64 1.92 (1.91/1.92), fully emulated 5.57,
  native/emulated 0.34; per stage arm64/amd64: base 1.39/0.21, cann 3.27/5.04, pta 2.26/2.62, mindie 7.46/1.48,
  captures 6.69/1.27 (cann's helper included) and 1.69/0.87.
  Tried and dropped: each later helper downloading and running pip beside the one before it (only its placement and
  byte code after it): the 355 MiB unzip slowed cann's helper from 8.7 to 15.3 s, total 44.88 s (0.33).

  Next round (a slower, noisier machine: amd64 13.5 s, fully emulated arm64 80 s): pip's scheme is asked once per
  base image id (cached) instead of in an emulated stage every build (it took 1.7-2 s of the CPUs beside cann's
  helper, which waited for it), and the host's wget downloads (the mindie stage's 12 files: 1.0 -> 0.4 s). Paired
  with the previous version (farm-bench, 4 pairs, same folder): arm64 29.6 s vs 31.5 s, 0.93 (0.91-0.95); the real
  MindSpore stack 1.01 (0.90-1.12, 2 pairs). `--runs 2 --parts builds`: arm64 26.61 s (23.82/29.39), emulated
  79.79, amd64 13.51: 1.97 (1.68/2.28), fully emulated 5.91 (5.57 last round: QEMU was slower this day).
  Tried and dropped: the byte code compiled in a stage of its own and COPYed in after the installers of cann and
  mindspore (their scripts import nothing they install), overlapping the emulated installers: 0.925 against 0.930
  without it on this content, but the real MindSpore stack 1.16x slower (the compile shared the 2 CPUs with cann's
  installers, 8.2 s instead of 3.8 s, and every later helper waited for it).
  Next round: the served stages' pip check runs on the host's python3 (copied by native-tools with its standard
  library) over what the image's python3 reports (sys.path, its pip, the marker environment: 0.5 s under QEMU
  instead of the 1-1.5 s emulated check). Paired with the previous version (4 pairs after one warm-up): 20.7 s vs
  21.5 s, 0.98 (0.95-1.00); the real MindSpore stack 1.01 (1.01-1.12, 3 pairs: its time is the mindspore helper's
  pip work). `--runs 3 --parts builds` (a faster day: amd64 12.32 s, fully emulated 66.21 s, 5.38x): arm64
  22.29 s, 1.81 (per run 1.62/1.65/1.88); per stage arm64/amd64: base 1.27/0.30, cann 3.03/5.61 (its helper 4.03),
  pta 1.89/2.45, mindie 7.30/1.44, captures 5.80/1.27 (cann's helper included) and 1.67/0.88. The mindie stage is
  5.9 s of the 10 s left: its .run under QEMU (it imports torch and pip-installs its wheel, 3 s) and the image's
  pip installing the atb_llm wheel out of the ATB tarball after it (2.7 s).
  Both images (read by hand, then in tests/e2e/test_real_mindspore.py): 25,144 files under the Python prefix, the
  same but for 12 .pyc whose code bytes differ (marshal's reference flags), the same `pip list` and `pip check`.
  Next round: the mindie stage's atb_llm wheel (out of the ATB tarball, after the .run) is installed by the image's
  own pip run on the host's python3 (native-stage.py install, --target --no-deps; the image's pip when a
  requirement is missing): 1.35 s instead of 3-4.7 s. `--runs 3`: 19.07 s, 1.64 (1.51/1.64/1.70), mindie 5.08 s.
  Then one `dpkg -s` for the base stage's 4 packages (0.41 -> 0.11 s under QEMU), the byte tools' mount points
  removed once in the last stage (a RUN under QEMU each before, 0.35 s), the capture build's wait for the later
  helpers as a COPY (a RUN under QEMU before) and the set_env.sh capture as one bash script in the image (no
  python3 started under QEMU: 0.3-0.45 s less each). Paired with last round's version (5 pairs after one warm-up):
  18.84 s vs 23.95 s, 0.80 (0.73-0.86). `--runs 5 --parts builds` (amd64 12.32 s, fully emulated 68.15 s, 5.53x):
  arm64 18.59 s, 1.51 (per run 1.43/1.51/1.66; a noisier `--runs 3` the same day: 1.47, 1.17/1.49/1.58); per
  stage arm64/amd64: base 1.14/0.30, cann 2.58/5.20 (its helper 4.23), pta 1.70/2.66, mindie 5.32/1.38, captures
  5.69/1.15 (cann's helper included) and 1.58/0.85. Left: cann's helper (4.2 s; sympy's 1,620 .pyc are 3.5 s of
  CPU, on 2 CPUs shared with base and native-tools) before cann's installers, mindie's .run under QEMU (3 s), the
  probes and captures (python3 and bash start-up under QEMU).
  Next round (another machine: amd64 16.4 s, its cann stage 7.2 s; fully emulated arm64 103 s): MindIE's .run
  pip-installs its bundled mindie_llm wheel through a python3 shim (native-pip.sh: `python3 -m pip install` of
  wheels by path goes to native-stage.py pip on the host's python3, every other call to the image's python3), and
  a helper whose image's scheme is in the context settles in its one step (no RUN of its own). Paired, 6 pairs
  after one warm-up: the shim 0.94 (0.84-0.96) of the version before, 24.5 vs 26.5 s; the one-step helper 0.97
  (0.94-1.03). `--runs 3 --parts builds`: arm64 22.40 s, 1.37 (per run 1.17/1.32/1.42; the version before on
  this machine the same day: 23.79 s, 1.43, per run 1.23/1.47/1.60); per stage arm64/amd64: base 1.35/0.30, cann
  3.20/7.22 (its helper 4.63), pta 2.09/3.43, mindie 4.90/2.10, captures 7.09/1.41 (cann's helper included) and
  2.04/0.96.

  Also seen (before the cache epoch): under BuildKit a `--no-cache` passed to every engine build of a run rebuilt
  the stages before each capture again; a `--no-cache` on the first build only would have let the later builds take
  pta and mindie from an older build's cache (BuildKit's cache keys follow the Dockerfile, not the rebuilt parent).
"""
import argparse
import io
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import hashlib
from pathlib import Path
from typing import Dict, List

from common import ratio_spread, spread

from ascend_build.engines.network import bridge_gateway
from ascend_build.fastpath import BYPASS_ENV as FULL_ENV
from ascend_build.native_install import ENV as NATIVE_ENV

CLI = [sys.executable, "-m", "ascend_build"]
DOCKER = os.environ.get("ASCEND_BUILD_DOCKER", "/usr/bin/docker")
CLI_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BUILDKIT = dict(os.environ, DOCKER_BUILDKIT="1")
CACHE = Path(os.environ.get("ASCEND_BUILD_TEST_CACHE", Path.home() / ".cache" / "ascend-build-tests")) / "closure"
CLOSURE = ("sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec", "typing_extensions")
SITE = "/usr/local/lib/python3.11/dist-packages"
PIP_ENV = ("PIP_BREAK_SYSTEM_PACKAGES=1", "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_ROOT_USER_ACTION=ignore")


class Arch:
    def __init__(self, name, machine, platform, base):
        self.name, self.machine, self.platform, self.base = name, machine, platform, base


ARCHES = (Arch("arm64", "aarch64", "linux/arm64", "localhost/ascend-build-base:bookworm-arm64"),
          Arch("amd64", "x86_64", "linux/amd64", "localhost/ascend-build-base:bookworm"))


def run(cmd, check=True, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))[:300]} failed:\n{result.stdout[-1500:]}{result.stderr[-2500:]}")
    return result


def wheels(arch: Arch) -> Path:
    """The closure's wheels for the arch and Python 3.11, downloaded once into the cache."""
    folder = CACHE / arch.machine
    if not all(any(folder.glob(f"{name}-*.whl")) for name in CLOSURE):
        folder.mkdir(parents=True, exist_ok=True)
        print(f"downloading the closure's wheels for {arch.machine} into {folder}", flush=True)
        run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "--platform", f"manylinux2014_{arch.machine}",
             "--python-version", "3.11", "-d", str(folder), *CLOSURE])
    return folder


def make_workdir(root: Path, arch: Arch, filler: str = "4MiB") -> Path:
    """`init --demo --arch M --cann 8.0.RC2 --filler 4MiB` + the closure's wheels, required by requirements.txt."""
    workdir = root / arch.name
    run([*CLI, "init", "--demo", str(workdir), "--arch", arch.machine, "--cann", "8.0.RC2", "--filler", filler], env=CLI_ENV)
    for wheel in wheels(arch).glob("*.whl"):
        shutil.copy(wheel, workdir / "packages" / wheel.name)
    with open(workdir / "requirements.txt", "a") as out:
        out.write("".join(f"{name}\n" for name in CLOSURE))
    return workdir


def med(values):
    return statistics.median(values) if values else float("nan")


def table(title, rows: Dict[str, Dict[str, List[float]]], variants=("arm64", "amd64")):
    """One line per figure: each variant's seconds (min/median/max) and its ratio to the last
    variant (amd64) of the medians, with the per-run ratios."""
    print(f"== {title} (s, min/median/max over the runs; ratio = X/{variants[-1]} of the medians, with the per-run ratios)")
    width = max(len(k) for k in rows)
    for name, per in rows.items():
        base = per.get(variants[-1], [])
        cells = [f"{v} {spread(per[v]) if per.get(v) else '-':>18s}" for v in variants]
        ratios = [f"{v} {ratio_spread(per[v], base)}" for v in variants[:-1] if per.get(v) and base and min(base) > 0]
        print(f"  {name:{width}s}  " + "   ".join(cells) + ("   ratio " + "; ".join(ratios) if ratios else ""))


# ---------------------------------------------------------------- 1. whole builds, per stage
class Builds:
    """`ascend-build build --no-cache` of each arch's folder from scratch, alternating. Stage seconds come from the
    report. The tool prints "building up to its install step" when each set_env.sh capture build starts; run under a
    terminal (`script`), that line arrives when it is printed, so the seconds between the two markers, less the
    stages built in between, are the cann capture (image export + the container sourcing set_env.sh + removing the
    image). The rest of the engine phase less the pta and mindie stages is the mindie capture plus the last, all
    cached, engine build; that last build is measured alone right after (a no-change build with the fast path
    bypassed: the capture is then cached) and subtracted.

    From scratch: `--no-cache`, a new cache epoch per run (every stage built once, both captures again)."""

    def __init__(self, dirs: Dict[str, Path]):
        self.dirs, self.images = dirs, set()

    def build(self, arch: Arch, *extra, env=None):
        workdir = self.dirs[arch.name]
        report = workdir.parent / f"report-{arch.name}.json"
        cmd = [*CLI, "build", "-C", str(workdir), "--platform", arch.platform, "--engine", "buildkit", "--docker-bin", DOCKER,
               "--base-image", arch.base, "--timings", "--report", str(report), "-t", f"ab-arch:{arch.name}", *extra]
        start = time.monotonic()
        proc = subprocess.Popen(["script", "-qfec", shlex.join(cmd) + " >/dev/null", "/dev/null"], stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", env={**CLI_ENV, "TERM": "dumb", **(env or {})})
        marks = [time.monotonic() - start for line in proc.stdout if "building up to its install step" in line]
        if proc.wait() != 0:
            sys.exit(f"build of {arch.name} failed: see {workdir}/.ascend-build/logs")
        result = json.loads(report.read_text())
        self.images.add(result["image_id"])
        return result, marks, time.monotonic() - start

    def once(self, arch: Arch, env=None) -> Dict[str, float]:
        result, marks, wall = self.build(arch, "--no-cache", env=env)
        stages = {s["name"]: s["seconds"] for s in result["stages"]}
        if len(marks) != 2 or any(s["status"] != "built" for s in result["stages"] if s["name"] != "base"):
            sys.exit(f"{arch.name}: expected two capture builds and every stage built, got {marks} and {result['stages']}")
        engine = result["timings"]["engine"]
        final = self.build(arch, env={**(env or {}), FULL_ENV: "1"})[0]["timings"]["engine"]
        out = {f"stage {name}": seconds for name, seconds in stages.items()}
        for name, stage in ((result.get("emulation") or {}).get("stages") or {}).items():
            if stage.get("native_seconds"):
                out[f"  {name}'s wheels natively"] = stage["native_seconds"]
        out["capture after cann"] = marks[1] - marks[0] - stages["base"] - stages["cann"]
        out["capture after mindie"] = engine - (marks[1] - marks[0]) - stages["pta"] - stages["mindie"] - final
        out["last build (cached)"] = final
        out["engine phase"] = engine
        out["tool's own phases"] = sum(v for k, v in result["timings"].items() if k not in ("engine", "total"))
        out["total (wall)"] = wall
        return out

    # arm64 with the tool's native install (its default), arm64 fully emulated, amd64 (this host's arch)
    VARIANTS = (("arm64", 0, {}), ("arm64-emulated", 0, {NATIVE_ENV: "off"}), ("amd64", 1, {}))

    def run(self, runs: int):
        rows: Dict[str, Dict[str, List[float]]] = {}
        for n in range(runs + 1):   # the first round warms the page cache and the base images' layers: not counted
            order = self.VARIANTS[n % 3:] + self.VARIANTS[:n % 3]
            for name, index, env in order:
                got = self.once(ARCHES[index], env)
                print(f"  run {n}{' (warm-up)' if n == 0 else ''} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in got.items()), flush=True)
                if n:
                    for key, value in got.items():
                        rows.setdefault(key, {}).setdefault(name, []).append(value)
        table("whole build per stage (ascend-build build --engine buildkit --no-cache); arm64 = the native install "
              "(the default), arm64-emulated = ASCEND_BUILD_NATIVE_INSTALL=off", rows, ("arm64", "arm64-emulated", "amd64"))
        total = rows["total (wall)"]
        print(f"  => arm64/amd64 with the native install: {ratio_spread(total['arm64'], total['amd64'])}")
        print(f"  => arm64/amd64 fully emulated:          {ratio_spread(total['arm64-emulated'], total['amd64'])}")
        print(f"  => native install / emulated (arm64):   {ratio_spread(total['arm64'], total['arm64-emulated'])}")

    def clean(self):
        run([DOCKER, "rmi", "-f", "ab-arch:arm64", "ab-arch:amd64", *self.images], check=False)


# ---------------------------------------------------------------- 2. per step, by hand in containers
STEPS = r'''
set -e
cd /
now() { date +%s.%N; }
step() {   # step NAME CMD...: time one step, print "STEP NAME SECONDS"
    name=$1; shift; s=$(now)
    "$@" >/tmp/step.log 2>&1 || { echo "FAILED $name"; tail -n 20 /tmp/step.log; exit 1; }
    e=$(now); echo "STEP $name $(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')"
}
fetch() { dir=$1; shift; mkdir -p "$dir"; for f in "$@"; do wget -q -O "$dir/$(basename "$f")" "$URL$(basename "$f")"; done; }
sums() { for f in "$@"; do sha256sum "$f"; done; }
pipi() { python3 -m pip install --no-cache-dir --disable-pip-version-check --no-index --find-links "$PKG_DIR" "$@"; }
P=/usr/local/Ascend; W=/w/packages
T=$(ls $W/Ascend-cann-toolkit_*.run); K=$(ls $W/Ascend-cann-kernels-*.run); N=$(ls $W/Ascend-cann-nnal_*.run)
M=$(ls $W/Ascend-mindie_*.run); A=$(ls $W/Ascend-mindie-atb-models_*.tar.gz)
TORCH=$(ls $W/torch-*.whl); NPU=$(ls $W/torch_npu-*.whl)
CW="$(ls $W/mpmath-*.whl) $(ls $W/sympy-*.whl)"
PW=$(ls $W/*.whl | grep -v -e /torch -e /mpmath- -e /sympy-)
ALLW=$(ls $W/*.whl | grep -v /torch)
case "$MODE" in
stages)
    # cann: as run-stage.sh + install_cann.sh do it
    D=/tmp/ascend-pkgs/cann; export PKG_DIR=$D
    step cann.download fetch $D $T $K $N $CW
    step cann.sha256 sums $D/*
    step cann.pip_install pipi $(for f in $CW; do echo $D/$(basename $f); done)
    step cann.run_check bash $D/$(basename $T) --check
    step cann.run_payload_untar bash -c "mkdir -p /tmp/x && bash $D/$(basename $T) --noexec --extract=/tmp/x"
    rm -rf /tmp/x
    step cann.toolkit_run bash $D/$(basename $T) --install --quiet --install-path=$P --install-for-all
    . $P/ascend-toolkit/set_env.sh
    step cann.kernels_run bash $D/$(basename $K) --install --quiet --install-path=$P --type=toolkit --install-for-all
    step cann.nnal_run bash $D/$(basename $N) --install --quiet --install-path=$P --install-for-all
    rm -rf $D
    # pta
    D=/tmp/ascend-pkgs/pta; export PKG_DIR=$D
    step pta.download fetch $D $TORCH $NPU $PW /w/requirements.txt
    step pta.sha256 sums $D/*
    step pta.pip_install pipi $D/$(basename $TORCH) $D/$(basename $NPU) $(for f in $PW; do echo $D/$(basename $f); done)
    step pta.pip_requirements pipi -r $D/requirements.txt
    step pta.import_torch_abi env TORCH_DEVICE_BACKEND_AUTOLOAD=0 python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))'
    rm -rf $D
    # mindie
    D=/tmp/ascend-pkgs/mindie; export PKG_DIR=$D
    step mindie.download fetch $D $M $A $ALLW
    step mindie.sha256 sums $D/*
    . $P/nnal/atb/set_env.sh --cxx_abi=1
    step mindie.mindie_run bash $D/$(basename $M) --install --quiet --install-path=$P
    step mindie.chmod chmod -R go+rX,go-w $P/mindie
    mkdir -p $P/atb-models
    step mindie.atb_untar tar -xzf $D/$(basename $A) -C $P/atb-models --no-same-owner
    step mindie.atb_pip_install pipi $(find $P/atb-models -name 'atb_llm-*.whl' | head -n 1)
    rm -rf $D
    # ENV capture: what the tool's capture container does (source the set_env.sh files, print the environment)
    step env_capture bash -c ". $P/ascend-toolkit/set_env.sh; . $P/nnal/atb/set_env.sh --cxx_abi=1; . $P/mindie/set_env.sh; . $P/atb-models/set_env.sh; env -0 >/dev/null"
    # import checks (what verify probes); the byte code exists (pip compiled it)
    step import.python_start python3 -c pass
    step import.torch python3 -c 'import torch'
    step import.torch_npu python3 -c 'import torch_npu'
    step import.sympy python3 -c 'import sympy'
    step import.networkx python3 -c 'import networkx'
    step import.jinja2 python3 -c 'import jinja2, markupsafe'
    ;;
pip)
    # the same wheels (the closure + the torch stand-ins) in a fresh container, three ways
    export PKG_DIR=$W
    step pip.default pipi $W/*.whl
    python3 -m pip uninstall -y -q $(ls $W/*.whl | sed 's#.*/##; s#-.*##') >/dev/null
    step pip.no_compile pipi --no-compile $W/*.whl
    step pip.compileall python3 -m compileall -q -j1 $SITE
    find $SITE -name '__pycache__' -prune -exec rm -rf {} +
    step pip.compileall_j0 python3 -m compileall -q -j0 $SITE
    step pip.pyc_count sh -c "find $SITE -name '*.pyc' | wc -l > /tmp/n"
    echo "COUNT pyc $(cat /tmp/n) py $(find $SITE -name '*.py' | wc -l)"
    find $SITE -name '__pycache__' -prune -exec rm -rf {} +
    step import.sympy_without_pyc python3 -B -c 'import sympy'
    ;;
esac
'''


class Steps:
    def __init__(self, dirs: Dict[str, Path]):
        self.dirs = dirs
        self.host = bridge_gateway(DOCKER)
        if not self.host:
            sys.exit("the per-step runs need docker's bridge network (the packages are served on its gateway)")
        self.servers = {}

    def serve(self, arch: Arch) -> str:
        if arch.name not in self.servers:
            with __import__("socket").socket() as s:
                s.bind((self.host, 0))
                port = s.getsockname()[1]
            served = self.dirs[arch.name].parent / f"served-{arch.name}"
            served.mkdir(exist_ok=True)
            for path in [*(self.dirs[arch.name] / "packages").iterdir(), self.dirs[arch.name] / "requirements.txt"]:
                if not (served / path.name).exists():
                    (served / path.name).symlink_to(path)
            proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", self.host], cwd=served,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.servers[arch.name] = (proc, f"http://{self.host}:{port}/")
            time.sleep(0.5)
        return self.servers[arch.name][1]

    def once(self, arch: Arch, mode: str) -> Dict[str, float]:
        url = self.serve(arch)
        env = [f"-e{e}" for e in (*PIP_ENV, f"MODE={mode}", f"URL={url}", f"SITE={SITE}")]
        result = run([DOCKER, "run", "--rm", "-i", "--platform", arch.platform, *env, "-v", f"{self.dirs[arch.name]}:/w:ro",
                      "--entrypoint", "bash", arch.base, "-s"], input=STEPS)
        out = {}
        for line in result.stdout.splitlines():
            if line.startswith("STEP "):
                _, name, seconds = line.split()
                out[name] = float(seconds)
            elif line.startswith("COUNT "):
                print(f"  ({arch.name}) {line[6:]}")
        return out

    def run(self, runs: int):
        rows: Dict[str, Dict[str, List[float]]] = {}
        for n in range(runs):
            for arch in (ARCHES if n % 2 == 0 else ARCHES[::-1]):
                for mode in ("stages", "pip"):
                    for key, value in self.once(arch, mode).items():
                        rows.setdefault(key, {}).setdefault(arch.name, []).append(value)
                print(f"  run {n + 1} {arch.name} done", flush=True)
        table("per step, by hand in `docker run --platform` containers (base image, same commands as the stage scripts)", rows)

    def clean(self):
        for proc, _ in self.servers.values():
            proc.terminate()
            proc.wait()


# ---------------------------------------------------------------- 3. prototype: a native helper stage
PROTO = r'''
ARG ARM_BASE=localhost/ascend-build-base:bookworm-arm64
ARG HOST_BASE=localhost/ascend-build-base:bookworm
FROM --platform=$BUILDPLATFORM ${HOST_BASE} AS wheels
RUN --mount=type=bind,source=wheels,target=/w python3 -m pip install --no-cache-dir --disable-pip-version-check \
      --break-system-packages --no-index --no-deps --only-binary :all: --platform manylinux2014_aarch64 \
      --python-version 3.11 --implementation cp --abi cp311 --target /usr/local/lib/python3.11/dist-packages --no-compile /w/*.whl \
    && cd /usr/local/lib/python3.11/dist-packages && python3 -m compileall -q -j0 . -d $PWD -x '^./(bin|share)/' \
    && mkdir /out && mv bin /out/bin && mv share /out/share && mv $PWD /out/lib

FROM ${ARM_BASE} AS native
COPY --from=wheels /out/lib/ /usr/local/lib/python3.11/dist-packages/
COPY --from=wheels /out/bin/ /usr/local/bin/
COPY --from=wheels /out/share/ /usr/local/share/

FROM ${ARM_BASE} AS emulated
RUN --mount=type=bind,source=wheels,target=/w python3 -m pip install --no-cache-dir --disable-pip-version-check \
      --break-system-packages --no-index --no-deps /w/*.whl
'''


class Prototype:
    """The arm64 closure's wheels installed (a) by the emulated pip in the arm64 stage, as today, and (b) by the
    host's pip in a `FROM --platform=$BUILDPLATFORM` helper stage (--target, --platform manylinux2014_aarch64),
    COPY'd into the arm64 stage. Timed as whole `docker build`s (BuildKit, --no-cache) and per step."""

    def __init__(self, root: Path):
        self.ctx = root / "proto"
        (self.ctx / "wheels").mkdir(parents=True)
        for wheel in wheels(ARCHES[0]).glob("*.whl"):
            shutil.copy(wheel, self.ctx / "wheels" / wheel.name)
        (self.ctx / "Dockerfile").write_text(PROTO)

    def build(self, target: str) -> Dict[str, float]:
        cmd = [DOCKER, "build", "--progress", "plain", "--no-cache", "--platform", "linux/arm64", "--target", target,
               "-t", f"ab-proto:{target}", str(self.ctx)]
        start = time.monotonic()
        result = run(cmd, env=BUILDKIT)
        wall = time.monotonic() - start
        steps, names = {}, {}
        for line in result.stderr.splitlines():
            m = re.match(r"#(\d+) \[(\S+) (\d+/\d+)\] (\w+)", line)
            if m:
                names[m.group(1)] = f"{m.group(2)} {m.group(4)} ({m.group(3)})"
            m = re.match(r"#(\d+) DONE ([\d.]+)s", line)
            if m and m.group(1) in names and names[m.group(1)].split()[1] in ("RUN", "COPY"):
                steps[names[m.group(1)]] = float(m.group(2))
        steps["steps total"] = sum(steps.values())
        steps["docker build (wall)"] = wall
        return steps

    def run(self, runs: int):
        rows: Dict[str, Dict[str, List[float]]] = {}
        for n in range(runs + 1):
            for target in (("native", "emulated") if n % 2 else ("emulated", "native")):
                got = self.build(target)
                if n:
                    for key, value in got.items():
                        rows.setdefault(f"{target}: {key}", {}).setdefault("arm64", []).append(value)
        print("== prototype: the arm64 closure's wheels, native helper stage vs emulated pip (s, min/median/max)")
        width = max(len(k) for k in rows)
        for name, per in rows.items():
            print(f"  {name:{width}s}  {spread(per['arm64'])}")
        nat, emu = rows["native: docker build (wall)"]["arm64"], rows["emulated: docker build (wall)"]["arm64"]
        print(f"  whole build native/emulated: {ratio_spread(nat, emu)}")
        nat, emu = rows["native: steps total"]["arm64"], rows["emulated: steps total"]["arm64"]
        print(f"  install steps native/emulated: {ratio_spread(nat, emu)}")
        self.compare()

    def compare(self):
        print("== prototype: the installed trees (dist-packages, /usr/local/bin and /usr/local/share), native vs emulated")
        trees = {t: self.tree(f"ab-proto:{t}") for t in ("native", "emulated")}
        a, b = trees["native"], trees["emulated"]
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        print(f"  files: native {len(a)}, emulated {len(b)}; only in native {len(only_a)}, only in emulated {len(only_b)}")
        for path in only_a[:10]:
            print(f"    only native:   {path}")
        for path in only_b[:10]:
            print(f"    only emulated: {path}")
        kinds: Dict[str, List[str]] = {}
        for path in sorted(set(a) & set(b)):
            (ta, ma, sa, ha), (tb, mb, sb, hb) = a[path], b[path]
            if ta != tb:
                kinds.setdefault("type", []).append(path)
            if ma != mb:
                kinds.setdefault(f"mode {oct(ma)} vs {oct(mb)}", []).append(path)
            if path.endswith(".pyc"):
                if ha[0] != hb[0]:
                    kinds.setdefault(".pyc header (magic/flags)", []).append(path)
                if ha[1] != hb[1]:
                    kinds.setdefault(".pyc code (past the 16-byte header)", []).append(path)
                elif ha[2] != hb[2]:
                    kinds.setdefault(".pyc source mtime/size field only", []).append(path)
            elif (sa, ha) != (sb, hb):
                kinds.setdefault("content (size or sha256)", []).append(path)
        same = len(set(a) & set(b)) - len({p for v in kinds.values() for p in v})
        print(f"  identical (name, type, mode, size, sha256; .pyc: all 16 header bytes and code): {same}")
        for kind, paths in kinds.items():
            print(f"  differ in {kind}: {len(paths)}, e.g. {', '.join(paths[:4])}")
            if kind.startswith("content"):
                for path in paths[:6]:
                    self.show_diff(path)
        lists = {t: run([DOCKER, "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "python3", f"ab-proto:{t}",
                         "-m", "pip", "list", "--format", "freeze", "--disable-pip-version-check"]).stdout for t in trees}
        print(f"  pip list: {'identical' if lists['native'] == lists['emulated'] else 'DIFFERS'} "
              f"({len(lists['native'].splitlines())} / {len(lists['emulated'].splitlines())} lines)")
        if lists["native"] != lists["emulated"]:
            print("    native:   " + " ".join(lists["native"].split()))
            print("    emulated: " + " ".join(lists["emulated"].split()))

    def show_diff(self, path):
        texts = {}
        for t in ("native", "emulated"):
            texts[t] = self.files[f"ab-proto:{t}"].get(path, b"").decode(errors="replace").splitlines()
        import difflib
        diff = [l for l in difflib.unified_diff(texts["emulated"], texts["native"], "emulated", "native", n=0, lineterm="")][2:]
        print(f"    {path} (emulated -> native): " + " | ".join(diff[:8]) + (" | ..." if len(diff) > 8 else ""))

    files: Dict[str, Dict[str, bytes]] = {}

    def tree(self, image):
        """path -> (type, mode, size, (pyc header, sha256 of the code, or of the file)) for dist-packages and /usr/local/bin,
        read on the host from `docker cp` tar streams (nothing emulated). Small text files are kept, to show diffs."""
        cid = run([DOCKER, "create", "--platform", "linux/arm64", image]).stdout.strip()
        out, kept = {}, {}
        try:
            for root in (SITE, "/usr/local/bin", "/usr/local/share"):
                got = subprocess.run([DOCKER, "cp", f"{cid}:{root}", "-"], capture_output=True)
                if got.returncode != 0:
                    continue
                data = got.stdout
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    for member in tar:
                        name = f"{root}/{member.name.split('/', 1)[1]}" if "/" in member.name else root
                        if member.isdir():
                            continue
                        body = tar.extractfile(member).read() if member.isfile() else member.linkname.encode()
                        if name.endswith(".pyc"):
                            digest = (body[:8], hashlib.sha256(body[16:]).hexdigest(), body[8:16])
                        else:
                            digest = hashlib.sha256(body).hexdigest()
                        if (len(body) < 200_000 or name.endswith("/RECORD")) and not name.endswith(".pyc"):
                            kept[name] = body
                        out[name] = ("f" if member.isfile() else "l", member.mode, member.size, digest)
        finally:
            run([DOCKER, "rm", "-f", cid], check=False)
        self.files[image] = kept
        return out

    def clean(self):
        run([DOCKER, "rmi", "-f", "ab-proto:native", "ab-proto:emulated"], check=False)


# ---------------------------------------------------------------- 4. the real pta stage (torch 2.6.0, torch_npu 2.6.0.post5)
# name -> (the folder a test fetched, the target built, what it holds)
REAL = {"real": (CACHE.parent / "real-stack-aarch64-cp311-2.6.0.post5", "pta", "tests/e2e/test_real_stack.py",
                 "stand-in CANN 8.5.0, real torch, torch_npu and their closure for aarch64 cp311"),
        "mindspore": (CACHE.parent / "real-mindspore-aarch64-cp311-2.10.0", "mindspore", "tests/e2e/test_real_mindspore.py",
                      "stand-in CANN 9.0.0, the real mindspore 2.10.0 wheel (355 MiB) and its closure for aarch64 cp311")}


class RealStack:
    """A real stack's folder (REAL: the e2e test that fetched it) built `--target T --no-cache` for arm64 with the
    native install and fully emulated, in turn. No amd64 side: the real x86_64 torch (the CPU index's) is not in the
    cache, and the public x86_64 mindspore is another wheel."""

    def __init__(self, root: Path, part: str):
        folder, self.target, test, self.holds = REAL[part]
        if not (folder / ".fetched").exists():
            sys.exit(f"{folder} is missing: run {test} once (it fetches the real wheels)")
        self.workdir = root / part
        shutil.copytree(folder, self.workdir, ignore=shutil.ignore_patterns(".ascend-build", ".fetched"),
                        copy_function=lambda a, b: os.link(a, b) if a.endswith((".whl", ".run")) else shutil.copy2(a, b))
        config = self.workdir / "ascend-build.yaml"
        if "\nbase_images:" not in config.read_text():
            with open(config, "a") as out:
                out.write(f"\nbase_images:\n  aarch64: {ARCHES[0].base}\n")
        self.tags = []

    def once(self, mode: str) -> Dict[str, float]:
        shutil.rmtree(self.workdir / ".ascend-build" / "set-env", ignore_errors=True)
        report, tag = self.workdir.parent / f"real-{self.target}-{mode}.json", f"ab-arch:real-{self.target}-{mode}"
        start = time.monotonic()
        run([*CLI, "build", "-C", str(self.workdir), "--platform", "linux/arm64", "--target", self.target, "--engine", "buildkit",
             "--docker-bin", DOCKER, "--no-cache", "-t", tag, "--report", str(report)], env={**CLI_ENV, NATIVE_ENV: mode})
        wall = time.monotonic() - start
        self.tags.append(tag)
        out = {}
        for name, stage in json.loads(report.read_text())["emulation"]["stages"].items():
            out[f"stage {name} under QEMU"] = stage["emulated_seconds"]
            if "native_seconds" in stage:
                out[f"  {name}'s {stage['native_wheels']} wheels natively"] = stage["native_seconds"]
        out["total (wall)"] = wall
        return out

    def run(self, runs: int):
        rows: Dict[str, Dict[str, List[float]]] = {}
        for n in range(runs):
            for mode in (("auto", "off") if n % 2 == 0 else ("off", "auto")):
                for key, value in self.once(mode).items():
                    rows.setdefault(key, {}).setdefault("native" if mode == "auto" else "emulated", []).append(value)
        table(f"the real {self.target} stack for arm64 ({self.holds}; build --target {self.target} --no-cache): "
              "native install vs fully emulated", rows, ("native", "emulated"))

    def clean(self):
        run([DOCKER, "rmi", "-f", *self.tags], check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", default="builds,steps", help="builds, steps, real and/or mindspore (comma-separated; "
                        "real: the real torch/torch_npu pta stack for arm64, mindspore: the real MindSpore stack, "
                        "native install vs emulated)")
    parser.add_argument("--prototype", action="store_true", help="time the native-install helper stage against the "
                        "emulated pip install, and compare the trees (instead of --parts)")
    parser.add_argument("--filler", default="4MiB", help="the stand-in installers' payload size (builds, steps)")
    opts = parser.parse_args()
    for arch in ARCHES:
        if run([DOCKER, "image", "inspect", arch.base], check=False).returncode != 0:
            sys.exit(f"needs {arch.base} in {DOCKER}'s store (scripts/make-base-image.sh; arm64 under QEMU binfmt)")
    print(f"{os.cpu_count()} CPUs, {opts.runs} counted runs per figure, docker {DOCKER}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="ab-arch-"))
    parts = []
    try:
        if opts.prototype:
            parts.append(Prototype(root))
            parts[-1].run(opts.runs)
            return
        wanted = {p.strip() for p in opts.parts.split(",")}
        for part in sorted(wanted & set(REAL)):
            parts.append(RealStack(root, part))
            parts[-1].run(opts.runs)
        if not wanted & {"builds", "steps"}:
            return
        dirs = {arch.name: make_workdir(root, arch, opts.filler) for arch in ARCHES}
        for name, cls in (("builds", Builds), ("steps", Steps)):
            if name in wanted:
                parts.append(cls(dirs))
                parts[-1].run(opts.runs)
    finally:
        for part in parts:
            part.clean()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
