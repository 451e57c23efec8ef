"""CLI output folders that appear whole: one run's files together, or none of them.

Every ``hh-jax`` command writes its files into a temporary sibling folder
(``PARENT/.hh-jax.tmp-<random>``), writes ``manifest.json`` last, and only then puts the folder in
place of ``--out``: with one atomic exchange of the two folders where the system offers it
(Linux ``renameat2(RENAME_EXCHANGE)``), else with two renames (old folder aside, new one in).
An interrupted or failing run removes its temporary folder and leaves ``--out`` as it was.
A ``--out`` that cannot be renamed as a whole (it, or a folder in it, is a mount point, as with
a container's bind mount) is written in place instead: the files are written into a temporary
folder inside it, the manifest first marks this command's outputs ``"incomplete": true``, the
files are renamed in one by one, and the manifest is written again last.

**What may be replaced.** ``--out`` may be missing, an empty folder, or an hh-jax output folder:
one holding ``manifest.json`` (format ``hh_jax.cli-output``) or, from hh-jax versions that wrote
no manifest, only file names hh-jax commands write (`OUTPUTS`) and sub-folders of the same kind
(or with a manifest, or a ``simulate_chunked`` ``meta.json``). Anything else (a file, a folder
holding other files) is refused before any computation starts, so ``--out .`` or ``--out ~``
never touches a project or a home folder. A ``--out`` that is a symbolic link is followed: its
target is replaced, the link stays.

**What is kept.** Several commands may share one folder (``simulate``, ``fi`` and
``bifurcation`` all default to ``out``; ``fit`` to ``out/fit``): a run replaces the files of its
own command, all of them (a file the new run does not write, e.g. ``voltage.png`` under
``--no-plot``, goes, so that no file of an older run remains beside the new ones). Other
commands' files and files the user added to an output folder are hard-linked (or copied) into
the new folder; sub-folders are moved into it just before the swap (moved back if the swap
fails). The folder keeps its permission bits. Writing into ``--out`` itself from another
process while a command finishes is not supported (such a file would go with the old folder).
"""

import ctypes
import datetime
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from ._io import _atomic_write, _fsync_folder

MANIFEST = "manifest.json"
_FORMAT = "hh_jax.cli-output"
_VERSION = 1

OUTPUTS = {
    "simulate": ("result.npz", "spikes.csv", "summary.txt", "voltage.png", "result.nwb"),
    "fi": ("fi.csv", "fi.png"),
    "bifurcation": ("equilibria.csv", "hopf.csv", "cycles.csv", "bifurcation.png"),
    "fit": ("params.json", "loss.csv", "fit.png"),
}
"""File names each command may write (a folder without a manifest holding only these is ours)."""

_KNOWN = {name: command for command, names in OUTPUTS.items() for name in names}


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("outputs"), dict):
        return None
    return data


def _stray_temporary(name: str) -> bool:
    """A temporary file left by an hh-jax per-file atomic write (``.NAME.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp") and name[1:-4].rsplit(".", 1)[0] in _KNOWN


def _our_temporary_folder(name: str) -> bool:
    """A temporary or set-aside output folder of an hh-jax run (``.hh-jax.tmp-<random>``, ``.hh-jax.old-<random>``; ``.NAME.tmp-<random>`` from earlier versions)."""
    return name.startswith(".") and (".tmp-" in name or ".old-" in name)


def _recognisable(folder: Path, depth: int = 0) -> bool:
    """Whether a folder without a manifest is recognisably hh-jax output (file names we write,
    sub-folders of the same kind, a manifest or a ``simulate_chunked`` meta.json)."""
    if depth > 3:
        return False
    if (folder / MANIFEST).is_file() or (folder / "meta.json").is_file():
        return True
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            if not (_our_temporary_folder(p.name) or _recognisable(p, depth + 1)):
                return False
        elif not (p.name in _KNOWN or _stray_temporary(p.name)):
            return False
    return True


def _owners(folder: Path) -> dict[str, str | None]:
    """name -> owner of each entry of an output folder: the command that wrote it, ``"stale"``
    (a temporary file to drop), ``"folder"`` (a sub-folder, kept) or None (the user's file, kept).

    `ValueError` naming ``--out`` when `folder` is not an hh-jax output folder.
    """
    entries = list(folder.iterdir())
    manifest = _read_manifest(folder)
    if manifest is None and (folder / MANIFEST).exists():
        raise ValueError(f"--out: {str(folder)!r} holds a {MANIFEST} that is not an hh-jax manifest; "
                         "choose another folder.")
    owner: dict[str, str | None] = {}
    if manifest is not None:
        for command, info in manifest["outputs"].items():
            for name in (info.get("files", []) if isinstance(info, dict) else []):
                owner[str(name)] = str(command)
    foreign = []
    for p in entries:
        if p.name == MANIFEST:
            continue
        if p.is_dir() and not p.is_symlink():
            if manifest is not None or _our_temporary_folder(p.name) or _recognisable(p, 1):
                owner[p.name] = "folder"
            else:
                foreign.append(p.name + "/")
        elif p.name in owner:
            continue
        elif p.name in _KNOWN and manifest is None:
            owner[p.name] = _KNOWN[p.name]
        elif _stray_temporary(p.name):
            owner[p.name] = "stale"
        elif manifest is not None:
            owner[p.name] = None  # the user's file in our folder: kept
        else:
            foreign.append(p.name)
    if foreign:
        foreign.sort()
        raise ValueError(f"--out: folder {str(folder)!r} is not empty and not an hh-jax output folder "
                         f"(it holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                         "choose a new or empty folder.")
    return owner


class OutputFolder:
    """The output folder of one CLI run, checked before the computation, written whole after it.

    ``OutputFolder(out, command=...)`` checks `out` (`ValueError` naming ``--out``: an existing
    file, an unrelated non-empty folder, a parent that is not a writable folder).
    ``with folder.writing() as tmp:`` yields the temporary folder (a `Path`) to write into; on a
    clean exit the manifest is written and the folder swapped into place, on any exception
    (``KeyboardInterrupt`` too) the temporary folder is removed and `out` is left as it was.
    """

    def __init__(self, out, *, command: str):
        if command not in OUTPUTS:
            raise ValueError(f"command: unknown command {command!r}; known: {sorted(OUTPUTS)}.")
        if not isinstance(out, (str, os.PathLike)) or not str(out):
            raise ValueError(f"--out must be a folder path, got {out!r}")
        self.command = command
        # through a symbolic link to its target, as the file writers do (the link stays)
        self.path = Path(os.path.realpath(out) if os.path.islink(out) else os.path.abspath(out))
        self.shown = str(out)
        self.check()

    def check(self) -> None:
        """`ValueError` naming ``--out`` when the run could not put its folder at `out`."""
        path = self.path
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"--out: {self.shown!r} exists and is not a folder.")
            _owners(path)
            if not _writable(path):
                raise ValueError(f"--out: cannot write in {self.shown!r} (permission denied).")
            cwd = Path(os.getcwd())
            if cwd == path or path in cwd.parents:
                raise ValueError(f"--out: {self.shown!r} holds the working folder; replacing it "
                                 "would pull the folder from under the shell. Choose a sub-folder.")
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise ValueError(f"--out: {str(ancestor)!r} is not a folder, so {self.shown!r} cannot be created.")
        if not _writable(ancestor):
            raise ValueError(f"--out: cannot write in {str(ancestor)!r} (permission denied).")

    def writing(self):
        """A context manager yielding the temporary folder (see the class docstring)."""
        return _Writing(self)

    def write(self, write):
        """``write(tmp)`` inside :meth:`writing`; returns what `write` returns."""
        with self.writing() as tmp:
            return write(tmp)


def _writable(folder: Path) -> bool:
    """Whether this process may create entries in `folder`."""
    return os.access(folder, os.W_OK | os.X_OK)


class _Writing:
    def __init__(self, folder: OutputFolder):
        self.folder = folder
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        target = self.folder.path
        self.folder.check()  # again: the folder may have changed during the computation
        target.parent.mkdir(parents=True, exist_ok=True)
        self.in_place = _pinned(target)
        where = target if self.in_place else target.parent
        self.tmp = Path(tempfile.mkdtemp(prefix=".hh-jax.tmp-", dir=where))
        try:  # __exit__ does not run when __enter__ raises (an interrupt here, too)
            os.chmod(self.tmp, 0o777 & ~_umask())  # as mkdir would (mkdtemp makes it 0700)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            (_commit_in_place if self.in_place else _commit)(self.folder, self.tmp)  # cleans up
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _commit(folder: OutputFolder, tmp: Path) -> None:
    """Carry over what the run does not replace, write the manifest, put `tmp` in place.

    Files of other commands and the user's files are hard-linked (or copied) into `tmp`;
    sub-folders are moved in just before the swap (and moved back if it fails), so that nothing
    but this command's old files and stale temporary files goes with the old folder.
    """
    target = folder.path
    moved: list[str] = []
    try:
        written = sorted(p.name for p in tmp.iterdir())
        outputs, folders, mode = {}, [], None
        if target.is_dir():
            owner = _owners(target)
            old = _read_manifest(target)
            for name, command in owner.items():
                if command in (folder.command, "stale") or name in written or not os.path.lexists(target / name):
                    continue
                if command == "folder":
                    folders.append(name)
                    continue
                _link_or_copy(target / name, tmp / name)
                if command is not None:
                    info = outputs.setdefault(command, {"files": []})
                    info["files"].append(name)
                    if old is not None and isinstance(old["outputs"].get(command), dict):
                        info.update({k: v for k, v in old["outputs"][command].items() if k != "files"})
            mode = stat.S_IMODE(target.stat().st_mode)
        outputs[folder.command] = _record(written)
        manifest = {"format": _FORMAT, "version": _VERSION, "outputs": outputs}
        _atomic_write(tmp / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1) + "\n"), "w")
        _fsync_folder(tmp)
        for name in folders:
            os.rename(target / name, tmp / name)
            moved.append(name)
        if mode is not None:
            os.chmod(tmp, mode)  # the folder keeps its permissions
        if not target.exists():
            os.rename(tmp, target)
            moved = []
        elif _exchange(tmp, target):
            moved = []  # the new folder is in place; `tmp` holds the old one
        else:
            aside = Path(tempfile.mkdtemp(prefix=".hh-jax.old-", dir=target.parent))
            os.rmdir(aside)
            os.rename(target, aside)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(aside, target)
                raise
            moved = []  # the new folder is in place; what remains is removing the old one
            tmp = aside
    except BaseException:
        for name in list(moved):  # the sub-folders go back where they were
            try:
                os.rename(tmp / name, target / name)
                moved.remove(name)
            except OSError:
                pass
        if moved:  # never delete what could not be moved back; say where it is
            raise OSError(f"--out: interrupted while replacing {str(target)!r}; sub-folder(s) "
                          f"{moved} are in {str(tmp)!r}") from None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # the old folder: this command's old files only
    _fsync_folder(target.parent)


def _pinned(target: Path) -> bool:
    """Whether `target` cannot be renamed as a whole: it, or a folder in it, is a mount point
    (a container's bind mount, a network share)."""
    if not target.is_dir():
        return False
    try:
        dev = target.parent.stat().st_dev
        return target.stat().st_dev != dev or os.path.ismount(target) or any(
            p.is_dir() and not p.is_symlink() and os.path.ismount(p) for p in target.iterdir())
    except OSError:
        return False


def _commit_in_place(folder: OutputFolder, tmp: Path) -> None:
    """`_commit` for a folder that cannot be swapped (a mount point): the manifest first says
    this command's outputs are incomplete, its old files go, the new ones are renamed in one by
    one (same file system: `tmp` is inside `target`), and the manifest is written last. An
    interruption leaves a folder whose manifest marks the command's outputs incomplete."""
    target = folder.path
    try:
        written = sorted(p.name for p in tmp.iterdir())
        owner = _owners(target)
        old = _read_manifest(target) or {"outputs": {}}
        outputs = {c: i for c, i in old["outputs"].items() if c != folder.command and isinstance(i, dict)}
        for name, command in owner.items():  # commands known only from their file names
            if command not in (None, "folder", "stale", folder.command) and command not in outputs:
                outputs.setdefault(command, {"files": []})["files"].append(name)

        def manifest(record):
            data = {"format": _FORMAT, "version": _VERSION, "outputs": outputs | {folder.command: record}}
            _atomic_write(target / MANIFEST, lambda f: f.write(json.dumps(data, indent=1) + "\n"), "w")

        manifest({"files": written, "incomplete": True})
        for name, command in owner.items():
            if command in (folder.command, "stale") and name not in written and (target / name).is_file():
                os.unlink(target / name)
        for name in written:
            os.replace(tmp / name, target / name)
        manifest(_record(written))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fsync_folder(target)


def _record(written: list[str]) -> dict:
    from ._version import __version__

    return {
        "files": written,
        "argv": list(sys.argv[1:]),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hh_jax": __version__,
    }


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


# --- the files of a CLI output folder -------------------------------------------------------------
# Every CLI output goes through hh_jax._io._atomic_write: a temporary file in the same folder,
# then os.replace; on any error the temporary file is removed and an existing file is untouched.
# (Here, not in _cli.py, so that every subcommand module imports them without importing _cli.)

def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically."""
    _atomic_write(path, lambda f: f.write(text), "w")


def write_npz(path: str, **arrays) -> None:
    """Write `arrays` to the ``.npz`` file `path` atomically."""
    import numpy as np

    _atomic_write(path, lambda f: np.savez(f, **arrays), "wb")


def write_png(fig, path: str, **kwargs) -> None:
    """Save a matplotlib figure as PNG atomically, and close it (also on error)."""
    import matplotlib.pyplot as plt

    try:
        _atomic_write(path, lambda f: fig.savefig(f, format="png", **kwargs), "wb")
    finally:
        plt.close(fig)
