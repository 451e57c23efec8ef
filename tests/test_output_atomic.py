"""Lost or mixed output (issue 12): a run's outputs appear whole, or a folder says it is incomplete.

`simulate_chunked`: chunk files written atomically, ``meta.json`` invalidated when a run starts
and written last, a non-empty folder refused unless ``overwrite=True``, ``resume=True``
continuing an interrupted run bit for bit. The CLI: one output folder swapped into place whole.
`save_params` as ``open(path, "w")`` would behave; `load_result` on a non-``.npz`` file.
"""

import json
import os
import pathlib
import re

import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
import hh_jax._chunked as chunked

P = hh_jax.HHParams(gNa=jnp.array([110.0, 120.0, 130.0]))
STIM = hh_jax.Sine(3.0, frequency=40.0, offset=9.0)  # time-dependent: the shift matters
KW = dict(duration=30.0, dt=0.01, chunk_steps=500, record=("V", "n"), record_every=10, t0=2.5,
          progress=False)  # 3 000 steps: six chunks


class Interrupt(KeyboardInterrupt):
    pass


def _interrupt_after(monkeypatch, k):
    """Ctrl-C in the middle of writing chunk `k` (after some bytes reached the disk)."""
    real = np.savez
    calls = {"n": 0}

    def savez(file, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= k:
            return real(file, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)):  # (the old code passed a path)
            file = open(str(file) if str(file).endswith(".npz") else f"{file}.npz", "wb")
        file.write(b"PK\x03\x04 partial")
        file.flush()
        raise Interrupt()

    monkeypatch.setattr(np, "savez", savez)


def _chunk_arrays(folder):
    out = {}
    for f in sorted(pathlib.Path(folder).glob("chunk_*.npz")):
        with np.load(f) as z:
            out[f.name] = {k: z[k] for k in z.files if k != "run_id"}
    return out


def _assert_same_run(a, b):
    """Bit for bit: every chunk file's arrays and everything the ChunkedResult reads back."""
    ca, cb = _chunk_arrays(a.path), _chunk_arrays(b.path)
    assert sorted(ca) == sorted(cb) and len(ca) == a.n_chunks
    for name in ca:
        assert sorted(ca[name]) == sorted(cb[name]), name
        for key in ca[name]:
            assert ca[name][key].dtype == cb[name][key].dtype, (name, key)
            assert np.array_equal(ca[name][key], cb[name][key]), (name, key)
    assert np.array_equal(a.spike_count, b.spike_count) and a.spike_count.dtype == b.spike_count.dtype
    for k in ("V", "m", "h", "n"):
        assert np.array_equal(np.asarray(getattr(a.final_state, k)), np.asarray(getattr(b.final_state, k)))
    assert np.array_equal(a.spike_table(), b.spike_table())
    for name in a.record:
        assert all(np.array_equal(x, y) for x, y in zip(a.trace(name), b.trace(name)))
    assert (a.n_chunks, a.n_steps, a.duration, a.dt, a.record) == (b.n_chunks, b.n_steps, b.duration, b.dt, b.record)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    return hh_jax.simulate_chunked(P, STIM, out=tmp_path_factory.mktemp("ref"), **KW)


def _leftovers(folder):
    return [p.name for p in pathlib.Path(folder).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("k", [0, 2, 5])
def test_interrupted_chunked_run_resumes_bit_for_bit(reference, tmp_path, monkeypatch, k):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after(m, k)
        with pytest.raises(Interrupt):
            hh_jax.simulate_chunked(P, STIM, out=out, **KW)
    # k whole chunks, no partial chunk file, no temporary file; meta says incomplete
    assert sorted(p.name for p in out.glob("chunk_*")) == [f"chunk_{i:05d}.npz" for i in range(k)]
    assert not _leftovers(out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is False
    with pytest.raises(ValueError, match=r"incomplete .*resume=True"):
        hh_jax.ChunkedResult.load(out)
    with pytest.raises(ValueError, match=r"not empty: it holds an interrupted .*resume=True"):
        hh_jax.simulate_chunked(P, STIM, out=out, **KW)
    resumed = hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW)
    _assert_same_run(reference, resumed)
    _assert_same_run(reference, hh_jax.ChunkedResult.load(out))
    assert json.loads((out / "meta.json").read_text())["complete"] is True
    # resuming a finished run reads it back
    _assert_same_run(reference, hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW))


def test_resume_twice_interrupted(reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    for k in (1, 2):
        with monkeypatch.context() as m:
            _interrupt_after(m, k)
            with pytest.raises(Interrupt):
                hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW)
    assert len(list(out.glob("chunk_*.npz"))) == 3
    _assert_same_run(reference, hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW))


def test_interrupted_overwrite_of_a_finished_folder_is_marked_incomplete(reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    old = hh_jax.simulate_chunked(P, STIM, out=out, **KW)
    other = P.replace(gK=30.0)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(Interrupt):
            hh_jax.simulate_chunked(other, STIM, out=out, overwrite=True, **KW)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is False and meta["run_id"] != old.run_id
    # never a mix: every chunk left is the new run's; the old result object refuses to read
    for f in out.glob("chunk_*.npz"):
        with np.load(f) as z:
            assert str(z["run_id"]) == meta["run_id"]
    assert not _leftovers(out)
    with pytest.raises(ValueError, match=r"incomplete simulate_chunked run .*resume=True"):
        hh_jax.ChunkedResult.load(out)
    with pytest.raises(ValueError, match=r"another run|missing"):
        old.spike_table()
    # resuming with the old arguments is refused, naming what differs
    with pytest.raises(ValueError, match=r"resume: .*another configuration \(differs in: params\)"):
        hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW)
    new = hh_jax.simulate_chunked(other, STIM, out=out, resume=True, **KW)
    _assert_same_run(hh_jax.simulate_chunked(other, STIM, out=tmp_path / "ref2", **KW), new)


def test_resume_refuses_other_settings(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after(m, 1)
        with pytest.raises(Interrupt):
            hh_jax.simulate_chunked(P, STIM, out=out, **KW)
    for change, field in [(dict(chunk_steps=1000), "chunk_steps"), (dict(t0=0.0), "t0"),
                          (dict(record=("V",)), "record"), (dict(stepper=hh_jax.RK4()), "stepper"),
                          (dict(y0=hh_jax.steady_state_at(-60.0, shape=(3,))), "y0"),
                          (dict(stimulus=hh_jax.Sine(3.0, frequency=41.0, offset=9.0)), "stimulus")]:
        kw = KW | change
        stim = kw.pop("stimulus", STIM)
        with pytest.raises(ValueError, match=rf"differs in: [a-z_0-9, ]*\b{field}\b"):
            hh_jax.simulate_chunked(P, stim, out=out, resume=True, **kw)
    assert len(list(out.glob("chunk_*.npz"))) == 1


def test_non_empty_folder_is_refused_unless_overwrite(tmp_path):
    kw = KW | dict(duration=5.0, chunk_steps=250, record=())
    out = tmp_path / "run"
    first = hh_jax.simulate_chunked(P, STIM, out=out, **kw)
    spikes = first.spike_table()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match=r"out: folder '.*run' is not empty: it holds a finished simulate_chunked run"):
        hh_jax.simulate_chunked(P, STIM, out=out, **kw)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    second = hh_jax.simulate_chunked(P, STIM, out=out, overwrite=True, **kw)
    assert second.run_id != first.run_id and np.array_equal(second.spike_table(), spikes)
    with pytest.raises(ValueError, match=r"chunk_00000\.npz: belongs to another run"):
        first.spike_table()  # a result object never reads a later run's files
    # fewer chunks than before: the old run's extra chunk files are gone
    third = hh_jax.simulate_chunked(P, STIM, out=out, overwrite=True, **(kw | dict(chunk_steps=500)))
    assert sorted(p.name for p in out.glob("chunk_*")) == ["chunk_00000.npz"] and third.n_chunks == 1
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not empty: it holds 1 file\(s\) that are not a simulate_chunked run"):
        hh_jax.simulate_chunked(P, STIM, out=other, **kw)
    with pytest.raises(ValueError, match=r"resume: .* holds no simulate_chunked run to resume"):
        hh_jax.simulate_chunked(P, STIM, out=other, resume=True, **kw)
    hh_jax.simulate_chunked(P, STIM, out=other, overwrite=True, **kw)
    assert (other / "notes.txt").read_text() == "mine"  # overwrite removes only our files
    with pytest.raises(ValueError, match=r"overwrite and resume exclude each other"):
        hh_jax.simulate_chunked(P, STIM, out=out, overwrite=True, resume=True, **kw)
    with pytest.raises(TypeError, match=r"resume must be a bool"):
        hh_jax.simulate_chunked(P, STIM, out=out, resume="yes", **kw)


def test_chunked_result_load_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(ValueError, match=r"is not a folder"):
        hh_jax.ChunkedResult.load(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"no readable meta\.json of a simulate_chunked run"):
        hh_jax.ChunkedResult.load(tmp_path)


# --- the CLI: one run's files appear together, or not at all -----------------------------------

import hh_jax._cli as cli  # noqa: E402
import hh_jax._output_dir as output_dir  # noqa: E402

SIM = ["simulate", "--duration", "1", "--dt", "0.05", "--no-plot"]
FI = ["fi", "--i-min", "8", "--i-max", "10", "--num", "2", "--transient", "5", "--window", "100", "--no-plot"]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in pathlib.Path(folder).iterdir()}


def _siblings(folder):
    return sorted(p.name for p in pathlib.Path(folder).parent.iterdir())


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_cli_interrupted_while_writing_keeps_the_previous_run(tmp_path, monkeypatch, capsys, exc):
    out = tmp_path / "run"
    assert cli.main(SIM + ["--current", "10", "--out", str(out)]) == 0
    before = _snapshot(out)
    assert set(before) == {"result.npz", "spikes.csv", "summary.txt", "manifest.json"}
    real = cli._atomic_write

    def failing(path, text):  # spikes.csv written, then the run dies before summary.txt
        if path.endswith("summary.txt"):
            raise exc(28, "No space left on device") if exc is OSError else exc()
        real(path, text)

    monkeypatch.setattr(cli, "_atomic_write", failing)
    argv = SIM + ["--current", "20", "--out", str(out)]
    if exc is KeyboardInterrupt:  # one line, exit status 130 (as a shell reports Ctrl-C)
        assert cli.main(argv) == 130
        assert capsys.readouterr().err.strip() == "hh-jax: interrupted; --out was left as it was"
    else:
        assert cli.main(argv) == 2
        assert "No space left on device" in capsys.readouterr().err
    assert _snapshot(out) == before  # the old run, whole: summary.txt matches spikes.csv
    assert _siblings(out) == ["run"]  # no temporary folder left
    monkeypatch.undo()
    assert cli.main(argv) == 0
    assert "current=20.0" in (out / "summary.txt").read_text() and _siblings(out) == ["run"]


def test_cli_swap_without_atomic_exchange(tmp_path, monkeypatch):
    """Where the system cannot exchange two folders: old aside, new in, old removed."""
    monkeypatch.setattr(output_dir, "_exchange", lambda a, b: False)
    out = tmp_path / "run"
    for current in ("10", "20"):
        assert cli.main(SIM + ["--current", current, "--out", str(out)]) == 0
        assert f"current={float(current)}" in (out / "summary.txt").read_text()
    assert _siblings(out) == ["run"]


COMPUTE = {  # the expensive call of each command: must not run when --out is bad
    "simulate": ("hh_jax.simulate", SIM),
    "fi": ("hh_jax.analysis.fi_curve", FI),
    "bifurcation": ("hh_jax.analysis.equilibrium_branch", ["bifurcation", "--num", "3", "--no-cycles", "--no-plot"]),
    "fit": ("hh_jax.fit.load_recording", ["fit", "--data", "nope.csv", "--protocol", "10", "--no-progress"]),
}


def _forbid(monkeypatch, dotted):
    def computed(*args, **kwargs):
        raise AssertionError("computed although --out is bad")

    monkeypatch.setattr(dotted, computed)


@pytest.mark.parametrize("command", COMPUTE)
def test_cli_bad_out_exits_2_before_computing(command, tmp_path, monkeypatch, capsys):
    dotted, argv = COMPUTE[command]
    _forbid(monkeypatch, dotted)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for out, message in [
        (a_file, r"--out: '.*a_file' exists and is not a folder"),
        (a_file / "sub", r"--out: '.*a_file' is not a folder, so '.*a_file/sub' cannot be created"),
        (mine, r"--out: folder '.*mine' is not empty and not an hh-jax output folder \(it holds notes\.txt\)"),
    ]:
        assert cli.main(argv + ["--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hh-jax: error: --out"), err
        assert re.search(message, err), err
    assert a_file.read_text() == "mine" and _snapshot(mine) == {"notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "mine"]


def test_cli_unwritable_parent_exits_2_before_computing(tmp_path, monkeypatch, capsys):
    _forbid(monkeypatch, "hh_jax.simulate")
    monkeypatch.setattr(output_dir, "_writable", lambda folder: False)  # as root, modes do not stop writes
    assert cli.main(SIM + ["--out", str(tmp_path / "run")]) == 2
    assert re.search(r"--out: cannot write in '.*' \(permission denied\)", capsys.readouterr().err)


def test_cli_commands_share_a_folder_without_stale_files(tmp_path):
    """fi then simulate into one folder: both kept; simulate again without the plot: no old PNG."""
    out = tmp_path / "out"
    assert cli.main(FI + ["--out", str(out)]) == 0
    fi_csv = (out / "fi.csv").read_bytes()
    assert cli.main(["simulate", "--duration", "1", "--dt", "0.05", "--out", str(out)]) == 0
    assert {"fi.csv", "result.npz", "voltage.png", "manifest.json"} <= set(_snapshot(out))
    assert cli.main(SIM + ["--out", str(out)]) == 0
    files = set(_snapshot(out))
    assert "voltage.png" not in files and (out / "fi.csv").read_bytes() == fi_csv
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "hh_jax.cli-output"
    assert sorted(manifest["outputs"]) == ["fi", "simulate"]
    assert sorted(manifest["outputs"]["simulate"]["files"]) == ["result.npz", "spikes.csv", "summary.txt"]
    assert manifest["outputs"]["fi"]["files"] == ["fi.csv"]
    # a file the user adds to an output folder is kept
    (out / "notes.txt").write_text("mine")
    assert cli.main(SIM + ["--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_folder_from_before_manifests_is_replaced(tmp_path):
    """A folder holding only names hh-jax writes (older versions wrote no manifest) is ours."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("result.npz", "spikes.csv", "summary.txt", "voltage.png", "fi.csv"):
        (out / name).write_bytes(b"OLD")
    assert cli.main(SIM + ["--out", str(out)]) == 0
    files = _snapshot(out)
    assert "voltage.png" not in files and files["fi.csv"] == b"OLD" and files["summary.txt"] != b"OLD"


def test_cli_keeps_sub_folders_and_puts_them_back_when_the_swap_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert cli.main(SIM + ["--out", str(out)]) == 0
    (out / "fit").mkdir()
    (out / "fit" / "params.json").write_text("{}")
    inode = (out / "fit").stat().st_ino
    before = _snapshot(out / "fit"), (out / "summary.txt").read_bytes()
    assert cli.main(SIM + ["--current", "20", "--out", str(out)]) == 0
    assert (out / "fit").stat().st_ino == inode and _snapshot(out / "fit") == before[0]

    def broken(a, b):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(output_dir, "_exchange", broken)
    summary = (out / "summary.txt").read_bytes()
    assert cli.main(SIM + ["--current", "30", "--out", str(out)]) == 2
    assert (out / "fit").stat().st_ino == inode and _snapshot(out / "fit") == before[0]
    assert (out / "summary.txt").read_bytes() == summary and _siblings(out) == ["out"]


def test_cli_recognises_output_folders_from_before_manifests_with_sub_folders(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "tsit5").mkdir(parents=True)
    (out / "tsit5" / "summary.txt").write_text("old")
    (out / "summary.txt").write_text("old")
    assert cli.main(SIM + ["--out", str(out)]) == 0
    assert (out / "tsit5" / "summary.txt").read_text() == "old" and (out / "summary.txt").read_text() != "old"
    (out / "data").mkdir()
    (out / "data" / "notes.txt").write_text("mine")
    (out / "manifest.json").unlink()  # no manifest: the foreign sub-folder makes it not ours
    assert cli.main(SIM + ["--out", str(out)]) == 2
    assert "(it holds data/)" in capsys.readouterr().err


# --- save_params as open(path, "w") would, atomically; load_result on a non-.npz file --------

import stat  # noqa: E402


def test_save_params_onto_a_symlink_writes_its_target(tmp_path):
    real = tmp_path / "real.json"
    hh_jax.save_params(real, hh_jax.HHParams())
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    hh_jax.save_params(link, hh_jax.HHParams.hh1952())
    assert link.is_symlink() and os.readlink(link) == "real.json"  # the link stays a link
    assert float(hh_jax.load_params(real).gL) == float(hh_jax.HHParams.hh1952().gL)
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    # a dangling link: open(..., "w") creates its target, so does save_params
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("new.json")
    hh_jax.save_params(dangling, hh_jax.HHParams())
    assert dangling.is_symlink() and (tmp_path / "new.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.json", "link.json", "new.json", "real.json"]


def test_save_params_refuses_a_read_only_file(tmp_path):
    """As ``open(path, "w")`` does for a user; as root (who passes every permission check) a
    file with no write bit at all counts as read-only, the user's stated intent."""
    path = tmp_path / "p.json"
    hh_jax.save_params(path, hh_jax.HHParams())
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(PermissionError, match=r"Permission denied.*p\.json"):
        hh_jax.save_params(path, hh_jax.HHParams.hh1952())
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(PermissionError):
        hh_jax.save_params(link, hh_jax.HHParams.hh1952())
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "p.json"]  # no temporary file
    path.chmod(0o644)
    hh_jax.save_params(path, hh_jax.HHParams.hh1952())
    assert path.read_bytes() != before


@pytest.mark.parametrize("content, what", [
    ('{"format": "hh_jax.HHParams"}', r"a JSON file, starting b'\{"),
    ("time_ms,voltage_mV\n0,-65\n", r"a text file"),
    ("", r"the file is empty"),
])
def test_load_result_on_a_file_that_is_not_npz_says_what_it_is(tmp_path, content, what):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(ValueError) as e:
        hh_jax.load_result(path)
    msg = str(e.value)
    assert re.search(rf"run\.json: not a readable \.npz archive \({what}.*expected an \.npz archive written by hh_jax\.save_result", msg), msg
    assert "pickled" not in msg


def test_cli_out_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "scratch"
    link = tmp_path / "out"
    link.symlink_to("scratch")
    for current in ("10", "20"):
        assert cli.main(SIM + ["--current", current, "--out", str(link)]) == 0
        assert link.is_symlink() and f"current={float(current)}" in (real / "summary.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scratch"]


def test_chunked_interrupted_after_the_last_chunk_before_the_final_meta(reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = chunked._write_meta

    def write_meta(folder, meta):
        if meta["complete"]:
            raise Interrupt()
        real(folder, meta)

    with monkeypatch.context() as m:
        m.setattr(chunked, "_write_meta", write_meta)
        with pytest.raises(Interrupt):
            hh_jax.simulate_chunked(P, STIM, out=out, **KW)
    with pytest.raises(ValueError, match=r"incomplete .*6 of 6 chunk files present"):
        hh_jax.ChunkedResult.load(out)
    _assert_same_run(reference, hh_jax.simulate_chunked(P, STIM, out=out, resume=True, **KW))


def test_resume_is_bit_for_bit_in_float32(tmp_path, monkeypatch, float32):
    p = hh_jax.HHParams(gNa=jnp.array([110.0, 130.0]))
    stim = hh_jax.Sine(3.0, frequency=40.0, offset=9.0)  # made in float32 too
    assert p.dtype == jnp.float32
    ref = hh_jax.simulate_chunked(p, stim, out=tmp_path / "ref", **KW)
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(Interrupt):
            hh_jax.simulate_chunked(p, stim, out=tmp_path / "run", **KW)
    _assert_same_run(ref, hh_jax.simulate_chunked(p, stim, out=tmp_path / "run", resume=True, **KW))


# --- found in review: mount points, read-only --out, SIGTERM, the working folder --------------


def test_cli_out_that_cannot_be_renamed_is_written_in_place(tmp_path, monkeypatch):
    """A mount point (a container's bind mount) cannot be swapped: the files are renamed in one
    by one, the manifest marking the command incomplete first and complete last; other
    commands' files stay; an interruption leaves the manifest saying incomplete."""
    monkeypatch.setattr(output_dir, "_pinned", lambda target: target.is_dir())
    out = tmp_path / "mnt"
    assert cli.main(FI + ["--out", str(out)]) == 0
    for current in ("10", "20"):
        assert cli.main(SIM + ["--current", current, "--out", str(out)]) == 0
        assert f"current={float(current)}" in (out / "summary.txt").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["outputs"]) == {"fi", "simulate"} and "incomplete" not in manifest["outputs"]["simulate"]
    assert sorted(p.name for p in out.iterdir()) == ["fi.csv", "manifest.json", "result.npz", "spikes.csv", "summary.txt"]
    real = os.replace

    def dies_on_spikes(a, b):
        if str(b) == str(out / "spikes.csv"):  # moving the new file into place (not writing it)
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(output_dir.os, "replace", dies_on_spikes)
    assert cli.main(SIM + ["--current", "30", "--out", str(out)]) == 130
    monkeypatch.setattr(output_dir.os, "replace", real)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["outputs"]["simulate"].get("incomplete") is True, manifest  # clearly marked, never a silent mix
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert cli.main(SIM + ["--current", "30", "--out", str(out)]) == 0
    assert "incomplete" not in json.loads((out / "manifest.json").read_text())["outputs"]["simulate"]


def test_cli_out_on_a_real_mount_point(tmp_path):
    """The same with a real tmpfs mount where this machine allows one (root in a container)."""
    import subprocess

    out = tmp_path / "mnt"
    out.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(out)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        for current in ("10", "20"):
            assert cli.main(SIM + ["--current", current, "--out", str(out)]) == 0
            assert f"current={float(current)}" in (out / "summary.txt").read_text()
        assert _siblings(out) == ["mnt"]
    finally:
        subprocess.run(["umount", str(out)])


def test_cli_read_only_out_is_refused_before_computing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert cli.main(SIM + ["--out", str(out)]) == 0
    monkeypatch.setattr(output_dir, "_writable", lambda folder: pathlib.Path(folder) != out)  # as for a user (root writes anyway)
    _forbid(monkeypatch, "hh_jax.simulate")
    assert cli.main(SIM + ["--out", str(out)]) == 2
    assert "--out: cannot write in" in capsys.readouterr().err


def test_cli_out_holding_the_working_folder_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert cli.main(SIM + ["--out", str(out)]) == 0
    monkeypatch.chdir(out)
    assert cli.main(SIM + ["--out", "."]) == 2
    assert "holds the working folder" in capsys.readouterr().err


def _wait_until_sigterm_is_caught(pid: int, timeout: float = 120.0) -> None:
    """Wait until process `pid` has a SIGTERM handler (Linux: the SigCgt mask in
    /proc/PID/status; elsewhere a fixed 6 s)."""
    import signal
    import time

    status = pathlib.Path(f"/proc/{pid}/status")
    if not status.exists():
        time.sleep(6)
        return
    bit = 1 << (signal.SIGTERM - 1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in status.read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) & bit:
                return
        time.sleep(0.05)
    raise AssertionError(f"the CLI installed no SIGTERM handler within {timeout} s")


def test_cli_sigterm_leaves_no_temporary_folder(tmp_path):
    """A batch system's SIGTERM cleans up as Ctrl-C does (the temporary folder went unremoved)."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "hh_jax", "simulate", "--n", "50", "--duration", "20000",
                             "--dt", "0.05", "--no-plot", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_sigterm_is_caught(proc.pid)  # not a fixed sleep: imports take long on a loaded machine
    # Signal once the temporary folder exists (the writing of 320 MB has begun), not after a fixed
    # delay: on an idle machine the whole run can end before a fixed delay does (rc 0, seen in CI).
    end = time.monotonic() + 120
    while not any(p.name.startswith(".hh-jax.tmp-") for p in tmp_path.iterdir()):
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before writing began"
        assert time.monotonic() < end, "no temporary folder appeared within 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
