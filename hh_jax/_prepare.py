"""What the simulate family shares before and after its loop, written once for `simulate`,
`simulate_chunked`, `simulate_sharded` and the fit objectives: the checks, dtypes, population
shape, default initial state and time grid (`prepare`, giving the `Problem` a backend runs), and
the result (`assemble`)."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._initial_state import steady_state_at
from ._result import SimulationResult, maybe_throw, state_is_finite
from ._simulate_checks import (
    _population_shape,
    check_family,
    check_memory,
    check_traced_params,
    default_max_spikes,
    stimulus_in_dtype,
)
from ._spikes import AbstractSpikeInterpolation, Crossings, HermiteSpikes, check_spike_interpolation, refine
from ._vector_field import HHState


def default_y0(shape: tuple[int, ...], dtype) -> HHState:
    """The default initial state: V = −65 mV, every gate at its steady state, broadcast to the
    population `shape`, in the working `dtype` (float32 parameters run in float32).

    **Example:** ``default_y0((10,), jnp.float64).V.shape`` = ``(10,)``.
    """
    return _default_y0(jnp.asarray(-65.0, dtype), tuple(shape))


@jax.jit(static_argnums=1)
def _default_y0(V, shape):
    # jitted: one compilation instead of one per eager operation (first call); in V's dtype
    # (the working dtype; steady_state_at computes in the default float)
    return jax.tree_util.tree_map(lambda x: x.astype(V.dtype), steady_state_at(V, shape=shape))


def sample_times(t0, dt, n_steps: int, record_every: int, dtype):
    """The times (ms) of the recorded samples of a fixed-step run: ``t0 + dt·k`` for
    ``k = 0, record_every, 2·record_every, …`` up to `n_steps`, in `dtype` (`t0`, `dt`: 0-d,
    possibly traced).

    **Example:** ``sample_times(0.0, 0.5, 4, 2, jnp.float64)`` = ``[0.0, 1.0, 2.0]``.
    """
    k = record_every * jnp.arange(n_steps // record_every + 1)
    return jnp.asarray(t0, dtype) + jnp.asarray(dt, dtype) * k.astype(dtype)


class Problem(eqx.Module):
    """What every backend runs (`_backends.AbstractBackend.run`): the time grid, what to record and
    the population, fixed by `prepare` before the run.

    **Fields:** `n_steps` (steps of `dt`), `t0`, `dt` (ms, 0-d arrays of the working dtype: traced
    under `eqx.filter_jit`, so calls differing only in them share one compilation), `record`
    (names), `record_every`, `max_spikes` (rows of spike times), `shape` (the population's),
    `dtype` (the working dtype), `throw`, `spike_interpolation` (an `AbstractSpikeInterpolation`).
    """

    n_steps: int = eqx.field(static=True)
    t0: jax.Array
    dt: jax.Array
    record: tuple[str, ...] = eqx.field(static=True)
    record_every: int = eqx.field(static=True)
    max_spikes: int = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)
    throw: bool = eqx.field(static=True, default=True)
    spike_interpolation: AbstractSpikeInterpolation = eqx.field(static=True, default=HermiteSpikes())

    def memory(self, **extra) -> int:
        """`check_memory` of this problem (`extra`: the backend's own parts, e.g. `saved_states`).
        **Returns:** the estimate, bytes."""
        return check_memory(shape=self.shape, n_steps=self.n_steps, record=self.record,
                            record_every=self.record_every, max_spikes=self.max_spikes,
                            dtype=self.dtype, **extra)


class Prepared(NamedTuple):
    """What `prepare` returns: the run's inputs checked and in the working dtype.

    `params` (with traced-value checks attached), `params_ok` (bool scalar or None: fold into the
    result's `finite`), `stimulus` (an `AbstractStimulus` in the working dtype), `y0` (the
    initial state in the working dtype; None where none was given: the default, `default_y0`,
    is built inside the run's jit), `problem` (a
    `Problem`), `t0_known` (the start time as a float, or None where it is traced), `grid` (the
    result's static `duration`/`dt`, floats)."""

    params: object
    params_ok: object
    stimulus: object
    y0: HHState | None
    problem: Problem
    t0_known: float | None
    grid: dict


def prepare(params, stimulus, *, duration, dt, y0, record, record_every, max_spikes, t0, throw,
            spike_interpolation=HermiteSpikes(), one_call: bool = True) -> Prepared:
    """The prologue of the simulate family (`simulate`, `simulate_sharded`, the fit objectives
    through `simulate`): argument checks (`check_family`), the working dtype, the population
    shape, the default `y0` and the time grid, once.

    **Arguments:** as `hh_jax.simulate` (`one_call`: see `check_family`).

    **Returns:** a `Prepared`.

    **Example:** ``prepare(HHParams(), 10.0, duration=1.0, dt=0.01, y0=None, record=("V",),
    record_every=1, max_spikes=None, t0=0.0, throw=True).problem.n_steps`` = 100.
    """
    a = check_family(params, stimulus, duration=duration, dt=dt, t0=t0, y0=y0, record=record,
                     record_every=record_every, max_spikes=max_spikes, throw=throw, one_call=one_call)
    check_spike_interpolation("spike_interpolation", spike_interpolation)
    params, params_ok = check_traced_params(params, a.throw)
    dtype = a.dtype  # the working dtype: the parameters' and a strongly typed y0's
    stimulus = stimulus_in_dtype(a.stimulus, dtype)  # a float32 current never meets a float64 state
    shape = _population_shape(params, stimulus, y0, 0.0 if a.t0_known is None else a.t0_known, dtype)
    max_spikes = default_max_spikes(a.duration) if a.max_spikes is None else a.max_spikes
    # t0 and dt enter the compiled programs as 0-d arrays (only n_steps fixes shapes): a new
    # start time or step reuses the compilation (a closed loop of one-step calls does not
    # recompile per step).
    problem = Problem(
        n_steps=a.n_steps, t0=jnp.asarray(a.t0, dtype), dt=jnp.asarray(a.dt, dtype), record=a.record,
        record_every=int(a.record_every), max_spikes=int(max_spikes), shape=shape, dtype=jnp.dtype(dtype),
        throw=bool(a.throw), spike_interpolation=spike_interpolation,
    )
    # memory up front, before anything is compiled or allocated: what every backend needs (each
    # adds its own parts in `AbstractBackend.prepare`)
    problem.memory()
    if y0 is not None:  # None: the default, built inside the run's jit (no compilation of its own)
        # The initial state in the working dtype (HHState(V=-65.0, ...) holds weakly typed
        # scalars, which follow the parameters), so that Python-number and array initial states
        # share one compilation.
        y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), y0)
    grid = dict(duration=a.n_steps * a.dt, dt=a.dt)  # the result's static fields, set outside the jit
    return Prepared(params, params_ok, stimulus, y0, problem, a.t0_known, grid)


def assemble(params, final: HHState, spike_count, spikes, traces: dict, t, problem: Problem,
             ok=None) -> SimulationResult:
    """The epilogue of every backend (inside the jit): the `SimulationResult` of a loop's output,
    the `Crossings` refined into spike times (`_spikes.refine`) where the loop recorded brackets,
    raising (with `problem.throw`) if the state is not finite.

    **Arguments:** `params` (broadcast to the population), the loop's `final` state,
    `spike_count` ``[*shape]``, `spikes` (`Crossings` ``[S, N]``, or spike times ``[S, *shape]``
    ms), `traces` (``{name: [samples, *shape]}``), sample times `t` (ms), the `problem`, `ok`
    (a bool scalar from the solver, or None).

    **Returns:** a `SimulationResult` (its static `duration`/`dt` are set outside the jit).
    """
    shape = problem.shape
    if isinstance(spikes, Crossings):
        V_th = jnp.broadcast_to(params.V_th, shape).reshape(-1)
        spikes = refine(spikes, t0=problem.t0, dt=problem.dt, V_th=V_th,
                        interpolation=problem.spike_interpolation)
        spikes = spikes.reshape((problem.max_spikes,) + shape)
    finite = state_is_finite(final)
    if ok is not None:
        finite = ok & finite
    result = SimulationResult(t=t, spike_count=spike_count, spike_times=spikes, final_state=final,
                              finite=finite, **traces)
    return maybe_throw(result, problem.throw)  # inside the jit: no eager compilation of the check
