"""Atomic file writing (private): a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = ["atomic_path", "check_outside", "read_npz", "resolve_device", "run_folder",
           "write_json", "write_npz", "write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` atomically.

    The temporary file lives in the same directory (same file system), is flushed to disk and
    renamed with :func:`os.replace`; on error it is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 -> what a plain open() gives
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _libc_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.renameat2
    except (OSError, AttributeError):
        return None


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` in one atomic step (Linux ``renameat2``).

    Returns ``False`` where the system has no atomic exchange (the caller then renames twice).
    """
    renameat2 = _libc_renameat2()
    if renameat2 is None:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _clear_stale_partials(path: Path) -> None:
    """Remove ``.NAME.partial-PID-*`` folders beside ``path`` left by killed processes."""
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        pid = stale.name[len(f".{path.name}.partial-"):].split("-", 1)[0]
        if stale.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_outside(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output ``out`` (a folder or a file) that is, contains or lies inside one of
    ``inputs`` (files or folders a command reads), so that replacing ``out`` whole can never
    delete an input.

    Raises:
        ValueError: naming the input that ``out`` would destroy.
    """
    resolved = Path(out).resolve()
    for keep in inputs:
        keep = Path(keep).resolve()
        if _is_within(resolved, keep) or _is_within(keep, resolved):
            raise ValueError(f"the output {out} must lie outside {keep} (and not contain it): "
                             "that is an input of this command and is never written")


@contextlib.contextmanager
def run_folder(path: str | os.PathLike, overwrite: bool = False,
               protect: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Build a run folder beside ``path`` and move it into place only when it is complete.

    Yields an empty temporary folder ``.NAME.partial-PID-XXXX`` in ``path``'s parent (same file
    system). When the ``with`` block ends normally the folder replaces ``path`` in one rename
    (an atomic exchange on Linux when ``path`` already exists), so ``path`` always holds either
    its old contents or the complete new run. On any exception (``KeyboardInterrupt`` from
    SIGINT, ``SystemExit`` from the CLI's SIGTERM handler included) the temporary folder is
    removed and ``path`` is untouched. A process killed outright (SIGKILL) leaves only the
    hidden temporary folder, which the next run into the same ``path`` removes.

    Args:
        path: the destination folder.
        overwrite: replace an existing non-empty ``path`` whole; without it such a folder is
            refused before any work is done.
        protect: folders that must survive: ``path`` may be neither inside one nor contain one
            (``physguard evaluate`` protects its ``--run``).

    Raises:
        FileExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
        ValueError: ``path`` is empty, the current directory or one of its parents, a file,
            inside or around a protected folder, or cannot be created (the OS reason is named).
    """
    if os.fspath(path) == "":
        raise ValueError("the output folder must be named (got an empty path)")
    path = Path(path)
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if _is_within(cwd, resolved):
        raise ValueError(f"the output folder {path} is the current directory or one of its "
                         "parents; name a folder for the run")
    check_outside(path, protect)
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            raise ValueError(f"cannot create the output folder {path}: {place} is a file")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"the output folder {path} already holds files; choose another "
                              "folder or pass --overwrite (overwrite=True) to replace it whole")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale_partials(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-{os.getpid()}-",
                                    dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 -> what a plain mkdir() gives
    except OSError as err:
        raise ValueError(f"cannot create the output folder {path}: "
                         f"{err.strerror or err}") from err
    try:
        yield tmp
        if path.is_dir():
            if not _exchange(tmp, path):
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                tmp = old
            shutil.rmtree(tmp, ignore_errors=True)  # now the old contents
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_npz(path: str | os.PathLike, arrays: dict, compress: bool = False) -> None:
    """Write ``arrays`` as an NPZ file atomically, byte-identical for identical arrays.

    ``numpy.savez`` stamps every member with the current time, so two runs with the same
    numbers give different bytes; here every member carries the fixed ZIP epoch
    (1980-01-01) instead. The file loads with ``numpy.load(..., allow_pickle=False)``.
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=method) as archive:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def read_npz(path: str | os.PathLike, required: Iterable[str]) -> dict[str, np.ndarray]:
    """All arrays of an NPZ file (no pickles), checking that ``required`` ones are present.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a truncated or non-NPZ file, or missing arrays (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy array under an .npz name
            raise ValueError(f"it holds a single {type(data).__name__}, not named arrays")
        with data:
            contents = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise ValueError(f"{path} is truncated or not an NPZ data file: {err}") from err
    missing = [k for k in required if k not in contents]
    if missing:
        raise ValueError(f"{path} misses the arrays {', '.join(missing)}")
    return contents


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"`` as a device.

    Raises:
        ValueError: ``"cuda"`` without a CUDA device, or another name.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device "
                         "(use --device cpu or auto)")
    return torch.device(name)
