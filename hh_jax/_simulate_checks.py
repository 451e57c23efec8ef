"""Argument checks of the simulate family (`simulate`, `simulate_chunked`, `simulate_sharded`):
Python-level shapes, types and values known before tracing, one function per argument, so that
every entry point gives the same message naming the argument for the same bad value."""

import math
import os
from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._params import VALUE_RULES, HHParams, check_values
from ._result import RECORDABLE
from ._spikes import crossing_record_bytes
from ._stimulus import AbstractStimulus, AbstractWrapper, as_stimulus
from ._validate import as_bool, as_int, as_number
from ._vector_field import HHState


def _check_t0(t0):
    """`t0` (ms) as a float; a 0-d JAX array is kept as an array (checked if concrete), so that
    `simulate` runs under a caller's `jax.jit` with a traced start time."""
    if isinstance(t0, (jax.Array, np.ndarray)):
        if t0.ndim != 0 or not jnp.issubdtype(t0.dtype, jnp.number) or jnp.issubdtype(t0.dtype, jnp.complexfloating):
            raise ValueError(f"t0 must be a finite number (ms), got an array of shape {t0.shape} and dtype {t0.dtype}.")
        if isinstance(t0, jax.core.Tracer):
            return t0
        t0 = t0.item()
    if isinstance(t0, bool) or not isinstance(t0, (int, float, np.integer, np.floating)) or not math.isfinite(t0):
        raise ValueError(f"t0 must be a finite number (ms), got {t0!r}.")
    return float(t0)


def _n_steps(duration: float, dt: float) -> int:
    n = round(duration / dt)
    if n < 1 or abs(n * dt - duration) > 1e-6 * max(duration, dt):
        raise ValueError(
            f"duration ({duration} ms) must be a whole number of steps dt ({dt} ms); "
            f"duration/dt = {duration / dt:.6g}."
        )
    return int(n)


def _check_stimulus_grid(stimulus: AbstractStimulus, dt: float, t0: float | None, t_end: float | None) -> None:
    """A sampled stimulus's grid must be a whole multiple of `dt` and (where the run's times are
    known in Python, `t0` not None) cover the run."""
    for d in stimulus.grid_dt():
        ratio = d / dt
        if abs(ratio - round(ratio)) > 1e-6 * max(ratio, 1.0) or round(ratio) < 1:
            raise ValueError(
                f"stimulus is sampled with dt={d} ms, which is not a whole multiple of the "
                f"simulation dt={dt} ms."
            )
    if t0 is None:
        return
    for start, end in stimulus.grid_span():
        if start > t0 + 1e-9 * max(abs(t0), 1.0) or end < t_end - 1e-6 * max(abs(t_end), 1.0):
            raise ValueError(
                f"stimulus samples cover [{start}, {end}] ms but the simulation runs over "
                f"[{t0}, {t_end}] ms."
            )


def _check_y0(y0: HHState) -> None:
    """Concrete initial states must be finite with gates in [0, 1] (traced ones are not checked)."""
    for name in ("V", "m", "h", "n"):
        x = getattr(y0, name)
        if isinstance(x, jax.core.Tracer):
            continue
        if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            continue
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"y0.{name} must be finite, got {arr.ravel()[:4].tolist()}.")
        # 1e-6 of slack: a final_state of an explicit stepper (RK4, Euler) may overshoot by rounding.
        if name != "V" and (np.any(arr < -1e-6) or np.any(arr > 1 + 1e-6)):
            raise ValueError(f"y0.{name} (a gate) must lie in [0, 1], got {arr.ravel()[:4].tolist()}.")


def _population_shape(params, stimulus, y0, t0, dtype=None) -> tuple[int, ...]:
    shapes = {"params": params.pop_shape}
    try:
        t = jax.ShapeDtypeStruct((), params.dtype if dtype is None else dtype)  # nothing to compile
        shapes["stimulus"] = tuple(jax.eval_shape(stimulus, t).shape)
    except Exception as e:
        raise ValueError(f"stimulus could not be evaluated at t={t0} ms: {e}") from None
    if y0 is not None:
        shapes["y0"] = y0.shape
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        detail = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"population shapes do not broadcast: {detail}.") from None


def _check_params(params) -> None:
    if not isinstance(params, HHParams):
        raise TypeError(f"params must be an HHParams, got {type(params).__name__}.")


def _check_stimulus(stimulus) -> AbstractStimulus:
    try:
        return as_stimulus(stimulus)
    except (TypeError, ValueError) as e:
        raise type(e)(f"stimulus: {e}") from None


def _check_y0_arg(y0) -> None:
    if y0 is not None and not isinstance(y0, HHState):
        raise TypeError(f"y0 must be an HHState, got {type(y0).__name__}.")
    if y0 is not None:
        _check_y0(y0)


def _check_record(record) -> tuple[str, ...]:
    """`record` as a tuple of names. ``None`` is refused (ambiguous: nothing, or the default?)."""
    if record is None:
        raise TypeError(
            "record must be a sequence of names (e.g. ('V', 'm')), got None; pass record=() to "
            "record nothing, or leave it out for the default."
        )
    if isinstance(record, str):
        return (record,)
    try:
        record = tuple(record)
    except TypeError:
        raise TypeError(f"record must be a sequence of names (e.g. ('V', 'm')), got {record!r}.") from None
    bad = [r for r in record if not isinstance(r, str) or r not in RECORDABLE]
    if bad:
        raise ValueError(f"record: unknown variable(s) {bad}; recordable: {list(RECORDABLE)}.")
    return record


def _working_dtype(params: HHParams, y0) -> np.dtype:
    """The dtype a run computes in: the parameters' and a *strongly typed* initial state's
    (Python numbers in `y0` follow the parameters)."""
    dtype = jnp.dtype(params.dtype)
    for v in "Vmhn":
        x = None if y0 is None else getattr(y0, v)
        if x is None or isinstance(x, (int, float)) or getattr(x, "weak_type", False):
            continue  # Python numbers (weakly typed) follow the parameters
        x_dtype = jnp.dtype(jnp.result_type(x))
        if jnp.issubdtype(x_dtype, jnp.floating) and x_dtype != dtype:
            # the wider float (by hand: jnp.promote_types refuses under strict promotion)
            wide = max(dtype, x_dtype, key=lambda d: d.itemsize)
            dtype = wide if dtype.itemsize != x_dtype.itemsize else jnp.dtype(jnp.float32)
    return jnp.dtype(dtype)


def _check_dt_nonzero(dt: float, dtype) -> None:
    """`dt` must be a positive step in the working dtype (float32 ``dt = 1e-50`` is 0)."""
    if not np.dtype(dtype).type(dt) > 0:
        raise ValueError(f"dt ({dt} ms) is 0 in the working dtype {np.dtype(dtype).name}; use a larger dt.")


def _check_clock_advances(dt: float, t0, t_end: float, dtype) -> None:
    """The clock must advance by `dt` at every time of the run (``t + dt == t`` at large ``|t|``)."""
    ftype = np.dtype(dtype).type
    step = ftype(dt)
    for t in ([] if t0 is None else [t0]) + [t_end]:
        T = ftype(abs(t))
        if T + step == T:
            raise ValueError(
                f"dt ({dt} ms) is below the resolution of {np.dtype(dtype).name} at t = {t} ms "
                f"(t + dt == t): the clock would not advance; use a larger dt, an earlier t0, or float64."
            )


def check_family(params, stimulus, *, duration, dt, t0, y0, record, record_every, max_spikes,
                 throw, one_call=True) -> SimpleNamespace:
    """The checks shared by `simulate`, `simulate_chunked` and `simulate_sharded`.

    `one_call`: the whole run is one `simulate` call (its step counter is int32, its clock runs
    in the working dtype from `t0`); False for `simulate_chunked`, whose chunks each run from a
    local time 0 and are checked by `simulate` itself.

    **Returns:** a namespace with `stimulus` (an `AbstractStimulus`), `duration`, `dt` (floats,
    ms), `t0` (a float, or a 0-d tracer under the caller's jit), `t0_known` (float or None),
    `n_steps`, `record` (tuple), `record_every`, `max_spikes` (int or None), `throw`, `dtype`
    (the working dtype).
    """
    _check_params(params)
    check_values(params)  # concrete fields that bypassed the constructor (eqx.tree_at)
    duration = as_number("duration", duration, unit="ms", positive=True)
    dt = as_number("dt", dt, unit="ms", positive=True)
    t0 = _check_t0(t0)
    t0_known = None if isinstance(t0, jax.core.Tracer) else t0
    throw = as_bool("throw", throw)
    stimulus = _check_stimulus(stimulus)
    _check_y0_arg(y0)
    record = _check_record(record)
    record_every = as_int("record_every", record_every, minimum=1)
    if max_spikes is not None:
        max_spikes = as_int("max_spikes", max_spikes, minimum=0)
    dtype = _working_dtype(params, y0)
    _check_dt_nonzero(dt, dtype)
    n_steps = _n_steps(duration, dt)
    if one_call and n_steps > 2**31 - 1:
        raise ValueError(
            f"duration/dt = {n_steps} steps exceeds the int32 step counter (2**31 - 1); "
            "run in pieces (pass the final_state as y0 and t0), or use simulate_chunked."
        )
    if one_call:
        _check_clock_advances(dt, t0_known, (0.0 if t0_known is None else t0_known) + duration, dtype)
    _check_stimulus_grid(stimulus, dt, t0_known, None if t0_known is None else t0_known + duration)
    return SimpleNamespace(stimulus=stimulus, duration=duration, dt=dt, t0=t0, t0_known=t0_known,
                           n_steps=n_steps, record=record, record_every=record_every,
                           max_spikes=max_spikes, throw=throw, dtype=dtype)


def check_traced_params(params: HHParams, throw: bool):
    """The value checks of `HHParams` that its constructor makes, for parameters that bypassed
    it: C > 0, conductances >= 0, a finite threshold, for the fields traced inside
    `jax.jit`/`grad`/`vmap` (checked in the run; concrete ones by `_params.check_values`).

    **Returns:** ``(params, ok)``: with `throw`, `params` carries an `eqx.error_if` per rule (the
    run raises a message naming the field); `ok` is a bool scalar to fold into the result's
    `finite` (None when no field is traced).
    """
    ok = None
    for name, bad, message in VALUE_RULES:
        value = getattr(params, name)
        if not isinstance(value, jax.core.Tracer):
            continue  # checked by check_values
        pred = jnp.any(bad(value))
        if throw:
            params = eqx.error_if(params, pred, f"hh_jax.simulate: {message} (a traced parameter).")
        ok = ~pred if ok is None else ok & ~pred
    return params, ok


class _InDtype(AbstractWrapper):
    """`stimulus` with its output cast to `dtype` (where casting its arrays was not enough)."""

    stimulus: AbstractStimulus
    dtype: np.dtype = eqx.field(static=True)

    def __call__(self, t):
        return jnp.asarray(self.stimulus(t)).astype(self.dtype)


def stimulus_in_dtype(stimulus: AbstractStimulus, dtype) -> AbstractStimulus:
    """`stimulus` computing in the working `dtype`: its floating arrays cast (the class is kept,
    so a `Constant` stays a `Constant`), and if its output still differs (a float64 constant
    inside `__call__`, an integer current), wrapped in a cast. Run before anything compiles, so
    that no path (fused kernel, `lax.scan`, Diffrax, gradients) meets two dtypes."""
    dtype = jnp.dtype(dtype)
    cast = lambda x: x.astype(dtype) if eqx.is_inexact_array(x) and x.dtype != dtype else x
    stimulus = jax.tree_util.tree_map(cast, stimulus)
    try:
        out = jax.eval_shape(stimulus, jax.ShapeDtypeStruct((), dtype))
    except Exception:  # reported, naming the stimulus, by _population_shape
        return stimulus
    if getattr(out, "dtype", dtype) != dtype:
        stimulus = _InDtype(stimulus, dtype)
    return stimulus


MAX_SPIKES_CAP = 1000
"""Default `max_spikes` is ``min(ceil(duration / 2 ms) + 1, MAX_SPIKES_CAP)``: a 500 Hz ceiling
for runs up to 2 s, then 1000 rows (counts stay exact; `SimulationResult.spike_overflow` flags
neurons with more spikes than rows)."""


def default_max_spikes(duration: float) -> int:
    return min(int(math.ceil(duration / 2.0)) + 1, MAX_SPIKES_CAP)


def available_memory() -> tuple[int, str] | tuple[None, None]:
    """Bytes the run may still allocate, and where that number comes from: the default device's
    free memory on an accelerator, else the host's available memory (psutil if installed,
    ``MemAvailable`` of /proc/meminfo, ``sysconf``); ``(None, None)`` where none is known."""
    try:
        if jax.default_backend() != "cpu":
            stats = jax.devices()[0].memory_stats() or {}
            if "bytes_limit" in stats:
                return stats["bytes_limit"] - stats.get("bytes_in_use", 0), f"{jax.devices()[0].device_kind} memory"
    except Exception:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available), "host memory"
    except Exception:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "host memory"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"), "host memory (free pages)"
    except (AttributeError, ValueError, OSError):
        return None, None


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_memory(*, shape, n_steps, record, record_every, max_spikes, dtype, saved_states=0,
                 table_elements=0, spike_interpolation=None) -> int:
    """`ValueError` with the estimate and the available memory when a run cannot fit.

    The estimate is a lower bound of what the run allocates (so that it never refuses a run that
    fits): the recorded traces (``samples × neurons × names``), the spike-time buffer
    (``max_spikes × neurons``), and for a fixed-step loop (`spike_interpolation` given, the
    loop's) the crossing record it refines them from (`_spikes.crossing_record_bytes` per slot),
    the state and parameters (~16 values per neuron), the states a Diffrax solve saves
    (`saved_states` per sample), and the fused kernel's stimulus tables (`table_elements`).
    **Returns:** the estimate, bytes.
    """

    N = math.prod(shape)
    b = np.dtype(dtype).itemsize
    samples = n_steps // record_every + 1
    parts = {
        "traces": samples * N * b * len(record),
        "spike times": max_spikes * N * b,
        "spike brackets": 0 if spike_interpolation is None else
        max_spikes * N * crossing_record_bytes(dtype, spike_interpolation),
        "state and parameters": 16 * N * b + 4 * N,
        "saved states": samples * N * b * saved_states,
        "stimulus tables": table_elements * b,
    }
    total = sum(parts.values())
    available, source = available_memory()
    if available is not None and total > available:
        detail = ", ".join(f"{k} {_gib(v)}" for k, v in parts.items() if v)
        raise ValueError(
            f"this run needs at least {_gib(total)} ({detail}; {N} neurons, {n_steps} steps) but "
            f"only {_gib(available)} of {source} is available: record fewer variables or every "
            "k-th step (record, record_every), lower max_spikes, split the population, or use "
            "simulate_chunked."
        )
    return total
