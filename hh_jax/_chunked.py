"""Long runs in constant memory: the simulation split into chunks, results streamed to disk.

:func:`simulate_chunked` runs :func:`hh_jax.simulate` chunk after chunk (one compilation serves
every full chunk), carrying the state across, and writes each chunk's spikes, spike counts and
decimated traces to ``DIR/chunk_NNNNN.npz (five-digit chunk number)`` before the next starts, with a tqdm progress bar.
Memory stays that of one chunk however many steps are taken. :class:`ChunkedResult` reads the
files back.
"""

import json
import os
from pathlib import Path
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._initial_state import steady_state_at
from ._params import HHParams
from ._simulate import simulate
from ._simulate_checks import check_family
from ._steppers import AbstractStepper, ExpEuler
from ._stimulus import AbstractStimulus
from ._vector_field import HHState


class _Shifted(AbstractStimulus):
    """``stimulus(t + offset)``: each chunk runs from t = 0, so one compilation serves all."""

    stimulus: AbstractStimulus
    offset: jax.Array

    def __call__(self, t):
        return self.stimulus(t + self.offset)

    def jump_times(self):
        return self.stimulus.jump_times() - float(self.offset)

    def grid_dt(self):
        return self.stimulus.grid_dt()

    def grid_span(self):
        o = float(self.offset)
        return tuple((a - o, b - o) for a, b in self.stimulus.grid_span())


class ChunkedResult(eqx.Module):
    """What :func:`simulate_chunked` returns: totals in memory, everything else on disk.

    **Fields:** `path` (the output folder), `spike_count` (spikes per neuron, ``[*pop]``),
    `final_state` (`HHState`), `n_chunks`, `n_steps`, `duration` (ms), `dt` (ms), `record`
    (names of the traces on disk).
    """

    path: str = eqx.field(static=True)
    spike_count: np.ndarray
    final_state: HHState
    n_chunks: int = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    record: tuple[str, ...] = eqx.field(static=True)

    def chunk_files(self) -> list[Path]:
        """The chunk files in time order."""
        return [Path(self.path) / f"chunk_{i:05d}.npz" for i in range(self.n_chunks)]

    def spike_table(self) -> np.ndarray:
        """All spikes as ``[K, 2]``: (flat neuron index, time in ms, float64), ordered by time."""
        parts = [np.load(f)["spikes"] for f in self.chunk_files()]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, 2))

    def trace(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A recorded trace read back from disk: ``(t [samples] ms, values [samples, *pop])``."""
        if name not in self.record:
            raise ValueError(f"{name!r} was not recorded; recorded: {list(self.record)}.")
        ts, vs = [], []
        for f in self.chunk_files():
            with np.load(f) as z:
                ts.append(z["t"])
                vs.append(z[name])
        return np.concatenate(ts), np.concatenate(vs, axis=0)


def _int_arg(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


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


def simulate_chunked(
    params: HHParams,
    stimulus: AbstractStimulus | float = 0.0,
    *,
    duration: float,
    dt: float,
    out: str | os.PathLike,
    chunk_steps: int = 100_000,
    stepper: AbstractStepper = ExpEuler(),
    y0: HHState | None = None,
    record: Sequence[str] = (),
    record_every: int = 100,
    max_spikes: int | None = None,
    t0: float = 0.0,
    progress: bool = True,
    throw: bool = True,
) -> ChunkedResult:
    """Simulate for many steps in constant memory, streaming results to ``out/chunk_NNNNN.npz (five-digit chunk number)``.

    Each file holds ``t`` (ms, float64, absolute), the recorded traces ``[samples, *pop]``
    (every `record_every`-th step; the chunk's first sample is the previous chunk's last and is
    kept only in chunk 0), ``spikes`` (``[K, 2]``: flat neuron index, absolute time in ms,
    float64) and ``spike_count`` (``[*pop]``). ``out/meta.json`` describes the run.

    Each chunk runs from a local time 0 with the stimulus shifted, so one compilation serves all
    full chunks; spike times are made absolute in float64 on the host. (In float32, a
    time-dependent stimulus is still evaluated at ``t + offset`` in float32, i.e. to ~1e-7·t.)

    **Arguments:**

    - `params`, `stimulus`, `duration` (ms), `dt` (ms), `stepper`, `y0`, `t0` (ms): as in
      :func:`hh_jax.simulate`.
    - `out`: folder for the chunk files (created if missing; `ValueError` if it is a file or
      cannot be created).
    - `chunk_steps`: steps per chunk, a multiple of `record_every`. Default 100 000.
    - `record`: trace names (see `hh_jax.RECORDABLE`). Default ``()`` (spikes only).
    - `record_every`: keep every k-th step. Default 100.
    - `max_spikes`: spike-time slots per neuron *per chunk*. Default: as in `simulate` for the
      chunk's duration (a 500 Hz ceiling, at most 1000 rows).
    - `progress`: show a tqdm progress bar (steps). Default True.
    - `throw`: raise if the state becomes NaN/Inf. Default True.

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
    chunk_steps = _int_arg("chunk_steps", chunk_steps, 1)
    if chunk_steps % record_every:
        raise ValueError(
            f"chunk_steps ({chunk_steps}) must be a multiple of record_every ({record_every})."
        )
    if n_steps % record_every and record:
        raise ValueError(f"the number of steps ({n_steps}) must be a multiple of record_every.")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be a bool, got {progress!r}.")
    out = _out_folder(out)
    if y0 is None:
        y0 = steady_state_at(jnp.asarray(-65.0, params.dtype), shape=params.pop_shape)
    y, done, i, total = y0, 0, 0, None
    with tqdm(total=n_steps, unit="step", unit_scale=True, disable=not progress) as bar:
        while done < n_steps:
            steps = min(chunk_steps, n_steps - done)
            offset = float(t0) + done * float(dt)
            stim = _Shifted(stimulus, jnp.asarray(offset, params.dtype))
            r = simulate(
                params, stim, duration=steps * dt, dt=dt, stepper=stepper, y0=y,
                record=record, record_every=record_every if record else 1,
                max_spikes=max_spikes, throw=throw,
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
            np.savez(out / f"chunk_{i:05d}.npz", spikes=spikes, spike_count=count, **data)
            total = count.astype(np.int64) if total is None else total + count
            del r, data, times
            done += steps
            i += 1
            bar.update(steps)
    meta = dict(n_chunks=i, n_steps=n_steps, duration=n_steps * dt, dt=dt, t0=t0,
                chunk_steps=chunk_steps, record=list(record), record_every=record_every)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return ChunkedResult(path=str(out), spike_count=total, final_state=y, n_chunks=i,
                         n_steps=n_steps, duration=n_steps * dt, dt=dt, record=record)
