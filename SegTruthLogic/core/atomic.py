"""Atomic file writes: a temporary file beside the target, renamed over it only when complete.

A crash, an error or a cancel never leaves a half-written mask where a user expects a good one. A command
with several outputs publishes them as one :class:`Outputs` transaction: every output is checked before the
work starts, written to a temporary place, and all are moved into place together, or none is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SegTruthError

# Multi-part extensions that writers recognise by their full suffix.
COMPOUND_SUFFIXES = (".seg.nrrd", ".nii.gz")


def full_suffix(path: str | Path) -> str:
    """``.nii.gz`` or ``.seg.nrrd`` where present, else the last suffix, lower-cased."""
    name = Path(path).name.lower()
    for suffix in COMPOUND_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def _parent(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def check_parent(target: str | Path) -> Path:
    """The folder ``target`` goes into exists and is a folder; a clear sentence naming what is wrong otherwise."""
    target = Path(target)
    parent = _parent(target)
    for folder in (parent, *parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise SegTruthError(f"{target}: {folder} is a file, not a folder.")
            break
    if not parent.is_dir():
        raise SegTruthError(f"{target}: the folder {parent} does not exist.")
    return parent


def check_creatable(folder: str | Path) -> Path:
    """``folder`` exists as a folder, or can be made: its nearest existing ancestor is a folder."""
    folder = Path(folder)
    for existing in (folder, *folder.parents):
        if existing.exists() or existing.is_symlink():
            if not existing.is_dir():
                where = "" if existing == folder else f" {existing}"
                raise SegTruthError(f"{folder}:{where} is a file, not a folder.")
            break
    return folder


def check_output_file(target: str | Path, overwrite: bool = True, parent_made: bool = False) -> Path:
    """Everything that can be known about writing the file ``target`` before any work is done.

    ``parent_made``: the writer creates the target's folder itself, so it need only be creatable.
    """
    target = Path(target)
    if target.is_dir():
        raise SegTruthError(f"{target}: is a folder, not a file name.")
    if parent_made:
        check_creatable(_parent(target))
    else:
        check_parent(target)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise SegTruthError(f"{target}: already exists; refusing to overwrite it.")
    return target


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    return text.splitlines()[-1].strip() if text else type(error).__name__


def _unwritable(target: Path, error: OSError) -> SegTruthError:
    return SegTruthError(f"{target}: could not be written ({_reason(error)}).")


@contextmanager
def atomic_path(target: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path with the target's extension; rename it onto the target on success."""
    target = check_output_file(target, overwrite)
    parent = _parent(target)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{full_suffix(target)}", dir=parent)
    except OSError as error:  # a read-only file system, no permission, no space
        raise _unwritable(target, error) from None
    os.close(handle)
    temp = Path(name)
    try:
        try:
            yield temp
        except (OSError, RuntimeError) as error:  # disk full, permissions, a writer's own failure
            raise (
                _unwritable(target, error)
                if isinstance(error, OSError)
                else SegTruthError(f"{target}: could not be written ({_reason(error)}).")
            ) from None
        if not temp.is_file() or temp.stat().st_size == 0:
            raise SegTruthError(f"{target}: the writer produced no data.")
        try:
            temp.chmod(target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())  # mkstemp: 0600
            os.replace(temp, target)
        except OSError as error:
            raise _unwritable(target, error) from None
    finally:
        if temp.exists():
            temp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(target: str | Path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """Call ``write(temp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target, overwrite) as temp:
        write(temp)
    return Path(target)


def atomic_write_text(target: str | Path, text: str, overwrite: bool = True) -> Path:
    return atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"), overwrite)


# -- folders ----------------------------------------------------------------------------------------------------------
FOLDER_MARK = ".segtruth-folder"  # in every folder SegTruth publishes: the files it wrote there, as it wrote them


def _files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, modification time in ns) of every file under ``folder`` but the mark."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != FOLDER_MARK:
            status = path.stat()
            files[path.relative_to(folder).as_posix()] = (status.st_size, status.st_mtime_ns)
    return files


def _write_mark(folder: Path) -> None:
    lines = [f"{size} {mtime} {name}" for name, (size, mtime) in _files_of(folder).items()]
    (folder / FOLDER_MARK).write_text(
        "SegTruth wrote this folder; it replaces it only while it holds just these files, unchanged.\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )


def _marked_files(folder: Path) -> dict[str, tuple[int, int]] | None:
    try:
        text = (folder / FOLDER_MARK).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    files = {}
    for line in text.splitlines()[1:]:
        size, mtime, name = line.split(" ", 2)
        files[name] = (int(size), int(mtime))
    return files


def check_output_folder(target: str | Path, overwrite: bool = False) -> Path:
    """A folder output may be written: new, empty, or (with ``overwrite``) one SegTruth wrote and nobody changed.

    SegTruth never deletes what it did not write: a folder holding any file SegTruth did not put there, or one it
    changed since, is refused, whatever ``overwrite`` says.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise SegTruthError(f"{target}: is a file, not a folder.")
    check_creatable(_parent(target))
    if not target.is_dir() or not any(target.iterdir()):
        return target
    if not overwrite:
        raise SegTruthError(f"{target}: already exists and is not empty; refusing to replace it.")
    marked = _marked_files(target)
    present = _files_of(target)
    foreign = sorted(set(present) - set(marked or {}))
    if marked is None or foreign:
        example = f" ({foreign[0]})" if foreign else ""
        raise SegTruthError(
            f"{target}: holds files SegTruth did not write{example}; refusing to replace it, so choose a new folder "
            "or move those files away."
        )
    changed = sorted(name for name, stamp in present.items() if marked[name] != stamp)
    if changed:
        raise SegTruthError(
            f"{target}: {changed[0]} changed since SegTruth wrote it; refusing to replace the folder, so choose a new "
            "folder or move that file away."
        )
    return target


@contextmanager
def atomic_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new empty folder beside ``target`` that becomes ``target`` only if the block succeeds.

    An existing non-empty ``target`` is replaced only with ``overwrite`` and only when SegTruth wrote all of it
    (:func:`check_output_folder`), and only after the new folder is complete. A missing parent folder is
    created, and removed again if nothing was written.
    """
    target = check_output_folder(target, overwrite)
    parent = target.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    except OSError as error:
        _remove_created(created)
        raise _unwritable(target, error) from None
    try:
        try:
            yield temp
            _write_mark(temp)
            temp.chmod(0o777 & ~_umask())  # mkdtemp made it private; a dataset is meant to be shared
            _replace_folder(temp, target)
        except OSError as error:  # disk full, permissions
            raise _unwritable(target, error) from None
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
        if not target.exists():
            _remove_created(created)


def _replace_folder(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    old = new.with_name(new.name + ".old")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)  # put the previous folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_created(created: list[Path]) -> None:
    for folder in created:  # innermost first
        try:
            folder.rmdir()
        except OSError:
            break


# -- several outputs as one -------------------------------------------------------------------------------------------
class Outputs:
    """All outputs of one command: checked before work starts, staged, then published together or not at all.

        with Outputs(overwrite=args.overwrite, inputs=[args.image]) as outputs:
            labels = outputs.file("labels.nii.gz")     # checked now: extension, folder, overwrite, not an input
            masks = outputs.folder("masks")
            ...long work writing to ``labels`` and into ``masks``...
        # both appear here, or, after an error, neither (and nothing else is left behind)

    The staged paths lie in a hidden folder beside each target, so publishing is a rename on the same disk.
    """

    def __init__(self, overwrite: bool = True, inputs: Iterable[str | Path | None] = ()) -> None:
        self.overwrite = overwrite
        self._inputs = {Path(p).resolve() for p in inputs if p is not None}
        self._staged: list[tuple[Path, Path, Path]] = []  # (stage folder, staged path, target)
        self._checks: list[Callable[[Path], object]] = []  # each target's check, made again just before publishing
        self._created: list[Path] = []

    def _stage(self, target: Path, check: Callable[[Path], object]) -> Path:
        if target.resolve() in self._inputs:
            raise SegTruthError(f"{target}: is also an input of this command; write the result to another file.")
        if any(target.resolve() == staged[2].resolve() for staged in self._staged):
            raise SegTruthError(f"{target}: is named twice as an output.")
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=_parent(target)))
        except OSError as error:
            raise _unwritable(target, error) from None
        self._staged.append((stage, stage / target.name, target))
        self._checks.append(check)
        return stage / target.name

    def file(self, target: str | Path) -> Path:
        """Check ``target`` now; return the path to write it to."""
        target = check_output_file(target, self.overwrite)
        return self._stage(target, lambda t: check_output_file(t, self.overwrite))

    def folder(self, target: str | Path, create_parents: bool = False) -> Path:
        """Check the folder ``target`` now; return the (not yet existing) path to build it at."""
        target = check_output_folder(target, self.overwrite)
        if create_parents:
            self.make_folder(target.parent)
        else:
            check_parent(target)
        return self._stage(target, lambda t: check_output_folder(t, self.overwrite))

    def make_folder(self, folder: str | Path) -> Path:
        """Create ``folder`` (and its parents) for outputs; removed again if nothing is published."""
        folder = Path(folder)
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        check_creatable(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SegTruthError(f"{folder}: cannot create this folder ({_reason(error)}).") from None
        self._created.extend(missing)
        return folder

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._publish()
        finally:
            for stage, _, _ in self._staged:
                shutil.rmtree(stage, ignore_errors=True)
            if kind is not None or not self._staged:
                _remove_created(self._created)

    def _publish(self) -> None:
        for (_, staged, target), check in zip(self._staged, self._checks):
            if not staged.exists():
                raise SegTruthError(f"{target}: the command produced no such output.")
            check(target)  # what is there now may not be what was there when the work started
            if target.exists() and target.is_dir() != staged.is_dir():
                raise SegTruthError(
                    f"{target}: something else took this name while the command ran; nothing was written."
                )
        done: list[tuple[Path, Path | None]] = []  # (target, where its previous version waits)
        try:
            for stage, staged, target in self._staged:
                previous = None
                if target.exists():
                    previous = stage / (target.name + ".old")
                    os.replace(target, previous)
                done.append((target, previous))
                if staged.is_file() and previous is not None and previous.is_file():
                    staged.chmod(previous.stat().st_mode & 0o777)
                os.replace(staged, target)
        except OSError as error:
            for target, previous in reversed(done):  # put back what was there
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                if previous is not None and previous.exists():
                    os.replace(previous, target)
            raise _unwritable(done[-1][0] if done else self._staged[0][2], error) from None

    @property
    def targets(self) -> list[Path]:
        return [target for _, _, target in self._staged]
