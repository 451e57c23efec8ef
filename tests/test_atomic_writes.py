"""Atomic writes: a failing write leaves no partial file and never clobbers an existing one.

Every writer — `save_params`, `save_result`, `save_module` and the CLI helpers used for every
CLI output (`_atomic_write`, `_atomic_savez`, `_atomic_savefig`) — goes through
`hh_jax._io._atomic_write` (temporary file in the target folder, ``fsync``, ``os.replace``).
Each is made to fail (1) half-way through serialising, after bytes reached the temporary file,
(2) on an interrupt (``KeyboardInterrupt``), (3) in a folder where no file can be created
(read-only), and (4) onto a target that is a folder. After each, the folder holds exactly what it
held before, byte for byte.
"""

import os
import pathlib
import stat

import equinox as eqx
import matplotlib.pyplot as plt
import numpy as np
import pytest

import hh_jax
import hh_jax._cli as cli
import hh_jax._io as io_

P = hh_jax.HHParams.hh1952()
RESULT = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=0.5, dt=0.05, record=("V",))


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    return fig


# name -> (write(path), the library call that serialises, to break half-way)
WRITERS = {
    "save_params": (lambda path: hh_jax.save_params(path, P), None),
    "save_result": (lambda path: hh_jax.save_result(path, RESULT), (np, "savez")),
    "save_module": (lambda path: hh_jax.save_module(path, P), (eqx, "tree_serialise_leaves")),
    "cli._atomic_write": (lambda path: cli._atomic_write(path, "neuron,time_ms\n0,1.0\n"), None),
    "cli._atomic_savez": (lambda path: cli._atomic_savez(path, V=np.ones(3)), (np, "savez")),
    "cli._atomic_savefig": (lambda path: cli._atomic_savefig(_figure(), path, dpi=20), None),
}
GOOD = b"GOOD FILE: must survive every failed write\n"


def _snapshot(folder: pathlib.Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else "dir") for p in folder.iterdir()}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "out.dat").write_bytes(GOOD)
    return tmp_path


class Boom(Exception):
    pass


def _half_then(exc):
    """A replacement serialiser: writes some bytes to the open file, then raises `exc`."""

    def fake(f, *args, **kwargs):
        f.write(b"PARTIAL" if "b" in getattr(f, "mode", "wb") else "PARTIAL")
        raise exc

    return fake


@pytest.mark.parametrize("name", WRITERS)
def test_exception_mid_write_leaves_no_partial_file_and_keeps_the_old_one(name, folder, monkeypatch):
    write, serialiser = WRITERS[name]
    before = _snapshot(folder)
    with monkeypatch.context() as m:
        if serialiser is not None:  # break the library serialiser itself, after partial output
            m.setattr(*serialiser, _half_then(Boom("mid-serialisation")))
        else:  # text/PNG writers: fail after the data reached the temporary file
            m.setattr(io_.os, "fsync", lambda fd: (_ for _ in ()).throw(Boom("disk full")))
        with pytest.raises(Boom):
            write(str(folder / "out.dat"))
    assert _snapshot(folder) == before
    # and the same write, unbroken, replaces the file completely
    write(str(folder / "out.dat"))
    assert (folder / "out.dat").read_bytes() != GOOD and not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["save_params", "save_result", "cli._atomic_savez"])
def test_interrupt_mid_write_is_cleaned_up(name, folder, monkeypatch):
    write, _ = WRITERS[name]
    before = _snapshot(folder)
    monkeypatch.setattr(io_.os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write(str(folder / "out.dat"))
    assert _snapshot(folder) == before


@pytest.mark.parametrize("name", WRITERS)
def test_read_only_folder(name, folder, monkeypatch):
    """No file can be created: a PermissionError, nothing written, the old file intact.

    As root, permission bits do not stop writes, so the folder's refusal is reproduced where
    the OS reports it (creating the temporary file); as another user the folder is chmod'ed.
    """
    write, _ = WRITERS[name]
    before = _snapshot(folder)
    if os.geteuid() == 0:
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(folder))

        monkeypatch.setattr(io_.tempfile, "mkstemp", refuse)
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(PermissionError):
            write(str(folder / "out.dat"))
    finally:
        folder.chmod(0o755)
    assert _snapshot(folder) == before


def test_read_only_file_system():
    """A real folder where nothing can be created, even by root (procfs)."""
    if not os.path.isdir("/proc/self"):
        pytest.fail("needs /proc (Linux)")
    before = sorted(os.listdir("/proc/self"))
    with pytest.raises(OSError):
        hh_jax.save_params("/proc/self/params.json", P)
    assert sorted(os.listdir("/proc/self")) == before


@pytest.mark.parametrize("name", WRITERS)
def test_target_is_a_folder(name, folder):
    (folder / "sub").mkdir()
    (folder / "sub" / "keep").write_bytes(GOOD)
    before = _snapshot(folder)
    write, _ = WRITERS[name]
    with pytest.raises(OSError):
        write(str(folder / "sub"))
    assert _snapshot(folder) == before and (folder / "sub" / "keep").read_bytes() == GOOD


def test_missing_folder_is_a_named_error(tmp_path):
    with pytest.raises(ValueError, match=r"path: folder '.*nope' does not exist"):
        hh_jax.save_params(tmp_path / "nope" / "p.json", P)
    assert list(tmp_path.iterdir()) == []


def test_written_files_have_the_usual_permissions(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    path = hh_jax.save_params(tmp_path / "p.json", P)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask


def test_cli_simulate_failing_write_keeps_previous_outputs(tmp_path, monkeypatch, capsys):
    """`hh-jax simulate` over a previous run's outputs, with the disk failing: rc 2, one line, all intact."""
    out = tmp_path / "run"
    out.mkdir()
    for f in ("result.npz", "spikes.csv", "summary.txt", "voltage.png"):
        (out / f).write_bytes(GOOD)
    before = _snapshot(out)
    monkeypatch.setattr(io_.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    argv = ["simulate", "--duration", "1", "--dt", "0.05", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert _snapshot(out) == before and [p.name for p in tmp_path.iterdir()] == ["run"]
    monkeypatch.undo()
    assert cli.main(argv) == 0
    after = _snapshot(out)  # the whole folder replaced, with the manifest written last
    assert set(after) == set(before) | {"manifest.json"} and all(v != GOOD for v in after.values())


def test_cli_modules_write_only_through_the_atomic_helpers():
    """No CLI module opens an output file or saves a figure by itself."""
    root = pathlib.Path(hh_jax.__file__).parent
    for path in (root / "_cli.py", root / "fit" / "_cli.py", root / "analysis" / "_cli.py"):
        src = path.read_text()
        body = src.split("def _atomic_write", 1)[0] if path.name == "_cli.py" and path.parent == root else src
        for bad in ("open(", ".savefig(", "np.savez(", "os.replace("):
            assert bad not in body, f"{path.relative_to(root.parent)} calls {bad} outside the atomic helpers"


def test_replacing_a_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{}")
    path.chmod(0o640)
    hh_jax.save_params(path, P)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and hh_jax.load_params(path) is not None
