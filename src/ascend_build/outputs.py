"""Where commands write. An output named with `-o` (a folder or a file) is checked before anything
is written: it must be new (or empty) unless `--force`, and even with `--force` it is never the
working directory, one of its inputs (config, README, requirements, packages, install-scripts/,
the state folder) or a folder that holds one. Files are written under a temporary name in the
same folder and renamed into place, so a failure leaves nothing half-written."""
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import FrozenSet, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

import yaml

from . import yamltext
from .catalog.scan import PACKAGES_DIR, is_project_file, looks_like_package
from .errors import OutputError
from .spec import CONFIG_NAME

# str/bytes: the file's content; Path: copy that file's bytes (a link is followed, never copied).
Content = Union[str, bytes, Path]
INPUT_FOLDERS = (PACKAGES_DIR, "install-scripts", ".ascend-build")
TEMP_PREFIX = ".ascend-build-tmp-"


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symbolic link loop
        raise OutputError(f"cannot follow {path}: {err}", fix="remove the symbolic link loop, or pick another path") from None


def _is_input_name(name: str) -> bool:
    lower = name.lower()
    return (is_project_file(name) or looks_like_package(name) or lower.endswith(".txt")
            or name in INPUT_FOLDERS)


@dataclass(frozen=True)
class Inputs:
    """A working directory's own files, by resolved path and by (device, inode)."""

    workdir: Path
    paths: FrozenSet[Path]                      # every input, files and folders
    ids: FrozenSet[Tuple[int, int]]
    folder_ids: FrozenSet[Tuple[int, int]]      # input folders: nothing may be written inside
    holder_ids: FrozenSet[Tuple[int, int]]      # the workdir and its parents: no folder output there


def _custom_stage_files(workdir: Path) -> List[Path]:
    """The `files:` of the config's custom stages, read leniently (the config is checked later)."""
    try:
        data = yamltext.load((workdir / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, yaml.YAMLError):
        return []
    stages = data.get("stages") if isinstance(data, dict) else None
    return [workdir / name for stage in (stages if isinstance(stages, list) else []) if isinstance(stage, dict)
            for name in (stage.get("files") if isinstance(stage.get("files"), list) else []) if isinstance(name, str)]


def inputs_of(workdir: Path) -> Inputs:
    workdir = Path(workdir).resolve()
    try:
        entries = [workdir / name for name in os.listdir(workdir) if _is_input_name(name)]
    except OSError:
        entries = []
    paths = {workdir} | {_resolve(p) for p in entries + _custom_stage_files(workdir)}
    folders = [workdir / name for name in INPUT_FOLDERS]
    holders = [workdir, *workdir.parents]
    ids = {i for i in map(_identity, paths) if i}
    return Inputs(workdir, frozenset(paths), frozenset(ids),
                  frozenset(i for i in map(_identity, folders) if i),
                  frozenset(i for i in map(_identity, holders) if i))


def _refuse_inputs(path: Path, inputs: Optional[Inputs], folder: bool) -> None:
    """One error when writing `path` could touch the working directory's own files."""
    if inputs is None:
        return
    resolved = _resolve(path)
    fix = (f"name a new folder, e.g. {inputs.workdir / 'out'}" if folder else
           "name a file that is not the config, a README, a requirements or package file, nor inside "
           f"{', '.join(n + '/' for n in INPUT_FOLDERS)}")
    what = None
    if resolved in inputs.paths or _identity(path) in inputs.ids:
        what = "the working directory" if resolved == inputs.workdir else "an input of the working directory"
    elif folder and _identity(path) in inputs.holder_ids:
        what = "a folder that holds the working directory"
    elif folder and any(resolved in p.parents for p in inputs.paths):
        what = "a folder that holds an input of the working directory"
    elif any(_identity(parent) in inputs.folder_ids for parent in resolved.parents):
        what = "inside an input folder of the working directory"
    if what:
        raise OutputError(f"{path} is {what} {inputs.workdir}; ascend-build never writes over its inputs, "
                          "not even with --force", fix=fix)


def _check_parent(path: Path) -> None:
    parent = path.absolute().parent
    if not parent.is_dir():
        problem = "is not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"cannot write {path}: the folder {parent} {problem}", fix=f"create it first (mkdir -p {parent}) or pick another path")


def check_folder(output: Path, force: bool, inputs: Optional[Inputs]) -> None:
    """Raise unless `output` can be written as a folder."""
    output = Path(output)
    _resolve(output)
    _check_parent(output)
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output} is a file, not a folder", fix="name a new folder (it is created) or an existing one")
    _refuse_inputs(output, inputs, folder=True)
    try:
        empty = not output.is_dir() or not any(output.iterdir())
    except OSError as err:
        raise OutputError(f"cannot read the folder {output}: {err.strerror or err}", fix="check its permissions") from None
    if not force and not empty:
        raise OutputError(f"{output} is not empty",
                          fix="pick a new or empty folder, or pass --force to replace the files of the same names in it")


def check_file(output: Path, force: bool, inputs: Optional[Inputs]) -> None:
    """Raise unless `output` can be written as a file."""
    output = Path(output)
    _resolve(output)
    _check_parent(output)
    if output.is_dir():
        raise OutputError(f"{output} is a folder, not a file", fix=f"name a file, e.g. {output / 'docker-bake.json'}")
    _refuse_inputs(output, inputs, folder=False)
    if output.exists() and not force:
        raise OutputError(f"{output} already exists", fix="pick a new file name, or pass --force to replace it")


def _relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise OutputError(f"refusing to write {name!r}: it is not a path inside the output folder")
    return rel


def _check_entries(root: Path, names: Iterable[str], replace: bool) -> None:
    """Every target is new or a replaceable file, in real folders under `root` (no links out)."""
    for name in names:
        rel = _relative(name)
        folder = root
        for part in rel.parts[:-1]:
            folder = folder / part
            if folder.is_symlink():
                raise OutputError(f"{folder} is a symbolic link; ascend-build writes only inside {root}",
                                  fix=f"move {folder} away, or pick another output")
            if folder.exists() and not folder.is_dir():
                raise OutputError(f"{folder} is a file where a folder is needed", fix=f"move {folder} away, or pick another output")
        target = root / rel
        if target.is_dir() and not target.is_symlink():
            raise OutputError(f"{target} is a folder where a file is needed", fix=f"move {target} away, or pick another output")
        if not replace and (target.exists() or target.is_symlink()):
            raise OutputError(f"{target} already exists", fix="pass --force to replace it")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _put(path: Path, content: Content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        copy_bytes(content, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def copy_bytes(source: Path, dest: Path) -> None:
    """Copy the bytes of `source` (the file a link points to, never the link) to `dest`."""
    real = Path(os.path.realpath(source))
    if not real.is_file():
        raise OutputError(f"{source} is not a regular file", fix="point it at a regular file")
    shutil.copyfile(real, dest)


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link the file `source` resolves to (its bytes, never a symbolic link), else copy it."""
    real = Path(os.path.realpath(source))
    if not real.is_file():
        raise OutputError(f"{source} is not a regular file", fix="point it at a regular file")
    try:
        os.link(real, dest)
    except OSError:
        shutil.copy2(real, dest)


def write_files(root: Path, files: Mapping[str, Content], *, replace: bool,
                modes: Optional[Mapping[str, int]] = None) -> List[Path]:
    """Write `files` (relative name -> content) under the folder `root` (created when missing):
    all of them into a temporary folder first, then each renamed into place. Without `replace`
    an existing file is an error; nothing is written before every target has been checked."""
    root = Path(root)
    _check_parent(root)
    _check_entries(root, files, replace)
    fresh = not root.exists()
    umask = _umask()
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-" if fresh else TEMP_PREFIX,
                                        dir=root.absolute().parent if fresh else root))
        for name, content in files.items():
            _put(staging / name, content)
            os.chmod(staging / name, (modes or {}).get(name, 0o666 & ~umask))
        if fresh:
            staging.chmod(0o777 & ~umask)
            os.rename(staging, root)
        else:
            for name in files:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, root / name)
    except OSError as err:
        raise OutputError(f"could not write {root}: {err.strerror or err}", fix="check the folder's permissions and free space") from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    return [root / name for name in files]


def write_folder(output: Path, files: Mapping[str, Content], force: bool, inputs: Optional[Inputs],
                 modes: Optional[Mapping[str, int]] = None) -> List[Path]:
    """The `-o DIR` of plan and export."""
    check_folder(output, force, inputs)
    return write_files(output, files, replace=force, modes=modes)


def write_file(output: Path, content: Content, force: bool, inputs: Optional[Inputs]) -> Path:
    """The `-o FILE` of bake (and build's --report)."""
    with file_in_place(output, force, inputs) as temp:
        _put(temp, content)
    return Path(output)



@contextlib.contextmanager
def file_in_place(output: Path, force: bool, inputs: Optional[Inputs]) -> Iterator[Path]:
    """The `-o FILE` of a large output written by streaming (save's archive): checked like
    write_file, then yields a temporary path in the same folder, renamed to `output` when the
    block ends without an error and deleted otherwise (Ctrl-C included)."""
    output = Path(output)
    check_file(output, force, inputs)
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{output.name}.tmp-", dir=output.absolute().parent)
        os.close(fd)
        yield Path(temp)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, output)
    except OSError as err:
        raise OutputError(f"could not write {output}: {err.strerror or err}", fix="check the folder's permissions and free space") from None
    finally:
        if temp and os.path.exists(temp):
            os.unlink(temp)
