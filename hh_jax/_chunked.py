"""Long runs in constant memory: the simulation split into chunks, results streamed to disk.

:func:`simulate_chunked` runs :func:`hh_jax.simulate` chunk after chunk (one compilation serves
every full chunk), carrying the state across, and writes each chunk's spikes, spike counts and
decimated traces to ``DIR/chunk_NNNNN.npz (five-digit chunk number)`` before the next starts, with a tqdm progress bar.
Memory stays that of one chunk however many steps are taken. :class:`ChunkedResult` reads the
files back.

**The folder is one run, never a mix.** Each chunk file is written atomically (temporary file in
the folder, ``fsync``, ``os.replace``) and carries the run's id and its final state.
``DIR/meta.json`` is written (atomically) with ``"complete": false`` before the first chunk, and
with ``"complete": true`` after the last: a folder whose meta says incomplete is an interrupted
run, which :meth:`ChunkedResult.load` refuses and ``simulate_chunked(..., resume=True)``
continues from its last complete chunk (bit for bit what an uninterrupted run gives: the
configuration, hashed into ``meta.json``, must match). A non-empty folder is refused unless the
caller passes ``overwrite=True`` (the new run's meta replaces the old one first, then the old
chunk files are removed) or ``resume=True``.
"""

import hashlib
import json
import math
import os
import re
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._backends import AbstractBackend
from ._io import _atomic_write, _fsync_folder
from ._params import HHParams
from ._prepare import default_y0
from ._simulate import simulate
from ._simulate_checks import check_family
from ._steppers import AbstractStepper, ExpEuler
from ._stimulus import AbstractStimulus, AbstractWrapper
from ._validate import as_bool, as_int
from ._vector_field import HHState


class _Shifted(AbstractWrapper):
    """``stimulus(t + offset)``: each chunk runs from t = 0, so one compilation serves all."""

    stimulus: AbstractStimulus
    offset: jax.Array

    def __call__(self, t):
        return self.stimulus(t + self.offset)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        offset = float(self.offset)
        return self.stimulus.jump_times(t0 + offset, t1 + offset) - offset

    def grid_span(self):
        o = float(self.offset)
        return tuple((a - o, b - o) for a, b in self.stimulus.grid_span())


_META = "meta.json"
_FORMAT = "hh_jax.simulate_chunked"
_VERSION = 1
_CHUNK_NAME = re.compile(r"chunk_\d{5}\.npz")
_STATE = ("V", "m", "h", "n")


def _chunk_name(i: int) -> str:
    return f"chunk_{i:05d}.npz"


def _is_ours(name: str) -> bool:
    """A file `simulate_chunked` writes: meta, a chunk, or a temporary file of either."""
    if name == _META or _CHUNK_NAME.fullmatch(name):
        return True
    return name.endswith(".tmp") and (name.startswith(".chunk_") or name.startswith("." + _META + "."))


def _read_meta(folder: Path) -> dict | None:
    """The folder's ``meta.json`` if it is one of ours, else None (missing or foreign)."""
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
        return None
    return meta


def _read_chunk(folder: Path, i: int, run_id: str, keys=None) -> dict:
    """Chunk `i` of run `run_id` as a dict of arrays; `ValueError` naming the file otherwise."""
    path = folder / _chunk_name(i)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "run_id" not in z.files or str(z["run_id"]) != run_id:
                raise ValueError(
                    f"{path}: belongs to another run (the folder was overwritten since, or is "
                    "being written)."
                )
            return {k: z[k] for k in (z.files if keys is None else keys)}
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (the folder was overwritten or is being written).") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable chunk file ({e}).") from None


def _incomplete_message(folder: Path, meta: dict) -> str:
    done = sum(1 for i in range(int(meta.get("n_chunks", 0))) if (folder / _chunk_name(i)).exists())
    return (
        f"{folder}: holds an incomplete simulate_chunked run (interrupted; {done} of "
        f"{meta.get('n_chunks')} chunk files present). Continue it with simulate_chunked(..., "
        f"out={str(folder)!r}, resume=True) and the same arguments, or start afresh with overwrite=True."
    )


class ChunkedResult(eqx.Module):
    """What :func:`simulate_chunked` returns: totals in memory, everything else on disk.

    **Fields:** `path` (the output folder), `spike_count` (spikes per neuron, ``[*pop]``),
    `final_state` (`HHState`), `n_chunks`, `n_steps`, `duration` (ms), `dt` (ms), `record`
    (names of the traces on disk), `run_id` (the run's id, also in every chunk file and in
    ``meta.json``: reading a chunk of another run raises `ValueError`).

    :meth:`ChunkedResult.load` reads a finished folder back.
    """

    path: str = eqx.field(static=True)
    spike_count: np.ndarray
    final_state: HHState
    n_chunks: int = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    record: tuple[str, ...] = eqx.field(static=True)
    run_id: str = eqx.field(static=True, default="")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ChunkedResult":
        """Read a folder written by :func:`simulate_chunked` back (totals from the chunk files).

        **Arguments:** `path`: the folder.

        **Returns:** a `ChunkedResult`. A folder that is not one of ours, or holds an interrupted
        (incomplete) run, or whose chunk files belong to another run, raises `ValueError` saying
        so (for an interrupted run: continue it with ``resume=True``).

        **Example:** ``r = hh_jax.ChunkedResult.load("out/long"); r.spike_table()[:3]``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a folder path (str or os.PathLike), got {path!r}.")
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"path: {str(folder)!r} is not a folder.")
        meta = _read_meta(folder)
        if meta is None:
            raise ValueError(f"{folder}: no readable {_META} of a simulate_chunked run; not a chunked-run folder.")
        if meta.get("complete") is not True:
            raise ValueError(_incomplete_message(folder, meta))
        n, run_id, total, last = int(meta["n_chunks"]), str(meta["run_id"]), None, None
        for i in range(n):
            z = _read_chunk(folder, i, run_id, ("spike_count",) + tuple(f"final_state.{k}" for k in _STATE))
            total = z["spike_count"].astype(np.int64) if total is None else total + z["spike_count"]
            last = z
        state = HHState(**{k: jnp.asarray(last[f"final_state.{k}"]) for k in _STATE})
        return cls(path=str(folder), spike_count=total, final_state=state, n_chunks=n,
                   n_steps=int(meta["n_steps"]), duration=float(meta["duration"]), dt=float(meta["dt"]),
                   record=tuple(meta["record"]), run_id=run_id)

    def chunk_files(self) -> list[Path]:
        """The chunk files in time order."""
        return [Path(self.path) / _chunk_name(i) for i in range(self.n_chunks)]

    def _chunks(self, keys):
        for i in range(self.n_chunks):
            yield _read_chunk(Path(self.path), i, self.run_id, keys)

    def spike_table(self) -> np.ndarray:
        """All spikes as ``[K, 2]``: (flat neuron index, time in ms, float64), ordered by time."""
        parts = [z["spikes"] for z in self._chunks(("spikes",))]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, 2))

    def trace(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A recorded trace read back from disk: ``(t [samples] ms, values [samples, *pop])``."""
        if name not in self.record:
            raise ValueError(f"{name!r} was not recorded; recorded: {list(self.record)}.")
        ts, vs = [], []
        for z in self._chunks(("t", name)):
            ts.append(z["t"])
            vs.append(z[name])
        return np.concatenate(ts), np.concatenate(vs, axis=0)


def _out_folder(out) -> Path:
    """`out` as a `Path` to an existing folder (created if missing); errors name `out`."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {out!r}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {str(out)!r} exists and is not a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"out: cannot create the folder {str(out)!r} ({e.strerror}).") from None
    return out


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _tree_hash(tree) -> str:
    """SHA-256 of a PyTree: its structure (static fields included) and every leaf's bytes."""
    h = hashlib.sha256()
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    h.update(_ADDRESS.sub("", str(treedef)).encode())
    for leaf in leaves:
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
            a = np.asarray(leaf)
            weak = bool(getattr(leaf, "weak_type", False))
            h.update(f"|{a.dtype.str}{a.shape}{weak}|".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(f"|{type(leaf).__name__}:{_ADDRESS.sub('', repr(leaf))}|".encode())
    return h.hexdigest()


def _configuration(params, stimulus, stepper, y0, loop=None, **settings) -> dict:
    """What fixes a chunked run's results, JSON-ready: settings as given, PyTrees as hashes
    (the backend `loop` only where one was passed, so that the default's hash is unchanged)."""
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
    config |= {name: _tree_hash(tree) for name, tree in
               (("params", params), ("stimulus", stimulus), ("stepper", stepper), ("y0", y0))}
    if loop is not None:
        config["loop"] = _tree_hash(loop)
    from ._version import __version__

    config |= {"jax": jax.__version__, "hh_jax": __version__, "backend": jax.default_backend(),
               "x64": bool(jax.config.jax_enable_x64)}
    return config


def _fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _write_meta(folder: Path, meta: dict) -> None:
    _atomic_write(folder / _META, lambda f: f.write(json.dumps(meta, indent=1)), "w")
    _fsync_folder(folder)


def _write_chunk(path: Path, arrays: dict) -> None:
    """One chunk file, atomically (a temporary file in the folder, fsync, os.replace)."""
    _atomic_write(path, lambda f: np.savez(f, **arrays), "wb")


def _remove_ours(folder: Path, keep_below: int = 0) -> None:
    """Remove our temporary files and the chunk files numbered >= `keep_below`."""
    for p in folder.iterdir():
        if not _is_ours(p.name) or p.name == _META:
            continue
        if _CHUNK_NAME.fullmatch(p.name) and int(p.name[6:11]) < keep_below:
            continue
        p.unlink(missing_ok=True)


def _prepare_folder(folder: Path, config: dict, meta: dict, *, overwrite: bool, resume: bool):
    """Claim `folder` for the run described by `meta`: returns ``(meta, first chunk, done)``.

    ``done`` is None for a fresh start, else a dict (``y``, ``total``) to continue from. Refuses a
    non-empty folder unless `overwrite` or `resume`; `resume` needs a matching configuration.
    """
    names = [p.name for p in folder.iterdir()]
    old = _read_meta(folder)
    if resume and old is not None:
        if old.get("fingerprint") != meta["fingerprint"]:
            theirs = old.get("config", {})
            differ = sorted(k for k in set(config) | set(theirs) if config.get(k) != theirs.get(k))
            raise ValueError(
                f"resume: {folder} holds a run with another configuration (differs in: "
                f"{', '.join(differ) or 'fingerprint'}); resume needs the same arguments. Pass "
                "overwrite=True to start afresh, or use another folder."
            )
        if old.get("complete") is True:
            return old, None, "complete"
        run_id, n = str(old["run_id"]), 0
        y, total = None, None
        while n < int(old["n_chunks"]):
            try:
                z = _read_chunk(folder, n, run_id, ("spike_count",) + tuple(f"final_state.{k}" for k in _STATE))
            except ValueError:  # missing, foreign or unreadable: continue from the one before
                break
            total = z["spike_count"].astype(np.int64) if total is None else total + z["spike_count"]
            y = HHState(**{k: jnp.asarray(z[f"final_state.{k}"]) for k in _STATE})
            n += 1
        _remove_ours(folder, keep_below=n)
        return old, n, (None if n == 0 else dict(y=y, total=total))
    if names and not (overwrite or resume):
        if old is not None and old.get("complete") is True:
            what = "a finished simulate_chunked run"
        elif old is not None:
            what = "an interrupted simulate_chunked run (continue it with resume=True)"
        else:
            what = f"{len(names)} file(s) that are not a simulate_chunked run (of this version)"
        raise ValueError(
            f"out: folder {str(folder)!r} is not empty: it holds {what}. Pass overwrite=True to "
            "replace it, or choose another folder."
        )
    if resume and names:
        raise ValueError(
            f"resume: folder {str(folder)!r} holds no simulate_chunked run to resume (no readable "
            f"{_META} of this version) but other files; pass overwrite=True or choose another folder."
        )
    # Fresh start or overwrite: the new run's meta (incomplete) replaces the old one first, so
    # the folder never reads as the old run again; then the old chunk files go.
    _write_meta(folder, meta)
    _remove_ours(folder)
    return meta, 0, None


def _chunk_max_spikes(max_spikes: int | None, duration: float) -> int:
    """Spike-time rows of one chunk: the caller's, else a 500 Hz ceiling over the chunk's
    duration (`chunk_steps` bounds the memory, so `simulate`'s cap on its default does not
    apply: a chunk keeps every spike time up to 500 Hz)."""
    return max_spikes if max_spikes is not None else int(math.ceil(duration / 2.0)) + 1


def simulate_chunked(
    params: HHParams,
    stimulus: AbstractStimulus | float = 0.0,
    *,
    duration: float,
    dt: float,
    out: str | os.PathLike,
    chunk_steps: int = 100_000,
    stepper: AbstractStepper | None = None,
    backend: AbstractBackend | None = None,
    y0: HHState | None = None,
    record: Sequence[str] = (),
    record_every: int = 100,
    max_spikes: int | None = None,
    t0: float = 0.0,
    progress: bool = True,
    throw: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> ChunkedResult:
    """Simulate for many steps in constant memory, streaming results to ``out/chunk_NNNNN.npz (five-digit chunk number)``.

    Each file holds ``t`` (ms, float64, absolute), the recorded traces ``[samples, *pop]``
    (every `record_every`-th step; the chunk's first sample is the previous chunk's last and is
    kept only in chunk 0), ``spikes`` (``[K, 2]``: flat neuron index, absolute time in ms,
    float64), ``spike_count`` (``[*pop]``), ``final_state.V`` … ``.n`` (the state at the chunk's
    end) and ``run_id``. ``out/meta.json`` describes the run; it says ``"complete": true`` only
    once every chunk is on disk. Every file is written atomically.

    Each chunk runs from a local time 0 with the stimulus shifted, so one compilation serves all
    full chunks; spike times are made absolute in float64 on the host. (In float32, a
    time-dependent stimulus is still evaluated at ``t + offset`` in float32, i.e. to ~1e-7·t.)

    **Arguments:**

    - `params`, `stimulus`, `duration` (ms), `dt` (ms), `stepper`, `backend`, `y0`, `t0` (ms):
      as in :func:`hh_jax.simulate`.
    - `out`: folder for the chunk files (created if missing; `ValueError` if it is a file or
      cannot be created, or if it is not empty and neither `overwrite` nor `resume` is given).
    - `chunk_steps`: steps per chunk, a multiple of `record_every`. Default 100 000.
    - `record`: trace names (see `hh_jax.RECORDABLE`). Default ``()`` (spikes only).
    - `record_every`: keep every k-th step. Default 100.
    - `max_spikes`: spike-time slots per neuron *per chunk*. Default: a 500 Hz ceiling over
      the chunk's duration (not capped as `simulate`'s default is: `chunk_steps` bounds the
      memory). A chunk with more spikes than slots warns once (counts stay exact).
    - `progress`: show a tqdm progress bar (steps). Default True.
    - `throw`: raise if the state becomes NaN/Inf. Default True.
    - `overwrite`: replace what `out` holds. The new run's ``meta.json`` (marked incomplete)
      replaces the old one first, then the old chunk files are removed; other files in `out`
      are left alone. Default False.
    - `resume`: continue an interrupted run in `out` from its last complete chunk; the results
      are bit for bit those of an uninterrupted run. Every argument that fixes the results
      (`params`, `stimulus`, `duration`, `dt`, `t0`, `y0`, `stepper`, `backend`, `chunk_steps`, `record`,
      `record_every`, `max_spikes`; also the JAX version, backend and x64 mode) must equal the
      interrupted run's (a hash of them is in ``meta.json``), else `ValueError` naming what
      differs. A finished run is read back, not recomputed; an empty `out` starts afresh.
      Default False.

    **Returns:** a `ChunkedResult`.

    **Example:**

    ```python
    r = hh_jax.simulate_chunked(hh_jax.HHParams(), 10.0, duration=100_000.0, dt=0.01,
                                out="out/long", chunk_steps=1_000_000)
    r.spike_count, r.spike_table()[:3]
    ```
    """
    from tqdm.auto import tqdm

    # the simulate family's shared checks (t0, dt, duration, y0, record, ...): same messages as simulate
    a = check_family(params, stimulus, duration=duration, dt=dt, t0=t0, y0=y0, record=record,
                     record_every=record_every, max_spikes=max_spikes, throw=throw, one_call=False)
    if a.t0_known is None:
        raise TypeError("t0 must be a concrete number (ms) in simulate_chunked (it runs a host loop), got a traced value.")
    stimulus, duration, dt, t0, n_steps = a.stimulus, a.duration, a.dt, a.t0, a.n_steps
    record, record_every, max_spikes, throw = a.record, a.record_every, a.max_spikes, a.throw
    chunk_steps = as_int("chunk_steps", chunk_steps, minimum=1)
    if chunk_steps % record_every:
        raise ValueError(
            f"chunk_steps ({chunk_steps}) must be a multiple of record_every ({record_every})."
        )
    if n_steps % record_every and record:
        raise ValueError(f"the number of steps ({n_steps}) must be a multiple of record_every.")
    for name, v in (("progress", progress), ("overwrite", overwrite), ("resume", resume)):
        as_bool(name, v)
    if overwrite and resume:
        raise ValueError("overwrite and resume exclude each other: pass at most one.")
    out = _out_folder(out)
    if y0 is None:  # in the working dtype (float32 parameters run in float32, as in simulate)
        y0 = default_y0(params.pop_shape, a.dtype)
    n_chunks = -(-n_steps // chunk_steps)
    config = _configuration(
        params, stimulus, ExpEuler() if stepper is None else stepper, y0, loop=backend, n_steps=n_steps, dt=float(dt), t0=float(t0),
        chunk_steps=chunk_steps, record=record, record_every=record_every, max_spikes=max_spikes,
    )
    meta = dict(format=_FORMAT, version=_VERSION, complete=False, run_id=uuid.uuid4().hex,
                fingerprint=_fingerprint(config), n_chunks=n_chunks, n_steps=n_steps,
                duration=n_steps * dt, dt=dt, t0=float(t0), chunk_steps=chunk_steps, record=list(record),
                record_every=record_every, config=config)
    meta, i, carry = _prepare_folder(out, config, meta, overwrite=bool(overwrite), resume=bool(resume))
    if carry == "complete":
        return ChunkedResult.load(out)
    run_id = meta["run_id"]
    y, total = (y0, None) if carry is None else (carry["y"], carry["total"])
    done, warned = i * chunk_steps, False
    with tqdm(total=n_steps, initial=done, unit="step", unit_scale=True, disable=not progress) as bar:
        while done < n_steps:
            steps = min(chunk_steps, n_steps - done)
            offset = float(t0) + done * float(dt)
            stim = _Shifted(stimulus, jnp.asarray(offset, a.dtype))
            rows = _chunk_max_spikes(max_spikes, steps * dt)
            r = simulate(
                params, stim, duration=steps * dt, dt=dt, stepper=stepper, backend=backend, y0=y,
                record=record, record_every=record_every if record else 1,
                max_spikes=rows, throw=throw,
            )
            y = r.final_state
            count = np.asarray(r.spike_count)
            times = np.asarray(r.spike_times).reshape(r.spike_times.shape[0], -1)
            slot, neuron = np.nonzero(np.isfinite(times))
            spikes = np.stack([neuron.astype(np.float64), offset + times[slot, neuron].astype(np.float64)], axis=1)
            spikes = spikes[np.lexsort((spikes[:, 0], spikes[:, 1]))]
            keep = slice(0, None) if i == 0 else slice(1, None)
            data = {k: np.asarray(getattr(r, k))[keep] for k in record}
            data["t"] = offset + np.asarray(r.t, np.float64)[keep] if record else np.zeros((0,))
            data |= {f"final_state.{k}": np.asarray(getattr(y, k)) for k in _STATE}
            _write_chunk(out / _chunk_name(i), dict(spikes=spikes, spike_count=count, run_id=np.asarray(run_id), **data))
            total = count.astype(np.int64) if total is None else total + count
            if not warned and rows < np.max(count, initial=0):
                warned = True
                warnings.warn(
                    f"simulate_chunked: chunk {i} holds more spikes per neuron ({int(np.max(count))}) "
                    f"than max_spikes={rows}; the spike table lacks their later times (spike_count "
                    "is exact). Pass a larger max_spikes.", stacklevel=2)
            del r, data, times
            done += steps
            i += 1
            bar.update(steps)
    _write_meta(out, meta | dict(complete=True, n_chunks=i))
    return ChunkedResult(path=str(out), spike_count=total, final_state=y, n_chunks=i,
                         n_steps=n_steps, duration=n_steps * dt, dt=dt, record=record, run_id=run_id)
