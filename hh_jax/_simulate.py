"""`simulate`: run a population of HH neurons with a scan stepper; record, detect spikes."""

import dataclasses
import math
from typing import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array
from ._diffrax import prepare_diffrax, run_diffrax
from ._fused import _table_shape, fused_arrays, unavailable_reason
from ._observables import observe, state_names, uses_current
from ._params import HHParams
from ._prepare import default_y0, sample_times
from ._spikes import SPIKE_INTERPOLATIONS, empty_crossings, record_brackets, refine
from ._result import RECORDABLE, SimulationResult, maybe_throw, state_is_finite
from ._simulate_checks import (
    _check_no_diffrax_options,
    check_family,
    check_memory,
    default_max_spikes,
    check_traced_params,
    stimulus_in_dtype,
    _population_shape,
)
from ._steppers import AbstractStepper, ExpEuler
from ._stimulus import AbstractStimulus, as_stimulus
from ._validate import as_bool, as_int
from ._vector_field import HHState, derivatives, injected_current

def _observe_samples(params, stimulus, ys: HHState, ts, record, shape) -> dict:
    """The `record`ed observables (`_observables.OBSERVABLES`) of the states ``ys`` stacked over
    the sample times ``ts`` (ms): ``{name: [samples, *shape]}``; the stimulus is evaluated at the
    samples only where an observable reads it."""
    I = jax.vmap(stimulus)(ts) if uses_current(record) else None
    at = lambda name: jax.vmap(lambda y, i: observe(name, params, y, i, shape),
                               in_axes=(0, None if I is None else 0))(ys, I)
    return {name: at(name) for name in record}


class _Config(eqx.Module):
    n_steps: int
    dt: jax.Array  # 0-d, the working dtype: traced, so one compilation serves every dt and t0
    t0: jax.Array
    record: tuple[str, ...]
    record_every: int
    max_spikes: int
    shape: tuple[int, ...]
    unroll: int
    checkpoint: bool = False
    throw: bool = True
    spike_interpolation: str = "hermite"


def _scan(f, carry, length: int, *, checkpoint: bool, unroll: int):
    """`lax.scan` of `f` for `length` steps; with `checkpoint`, in ~√length segments whose
    insides are recomputed on the backward pass (`jax.checkpoint`): reverse-mode memory then
    grows like √length instead of length."""
    if not checkpoint or length < 4:
        return jax.lax.scan(f, carry, None, length=length, unroll=min(unroll, length))
    seg = _segment_length(length)
    n_seg, rem = divmod(length, seg)

    @jax.checkpoint
    def segment(c, _):
        return jax.lax.scan(f, c, None, length=seg, unroll=min(unroll, seg))

    carry, ys = jax.lax.scan(segment, carry, None, length=n_seg)
    ys = jax.tree_util.tree_map(lambda y: y.reshape((n_seg * seg,) + y.shape[2:]), ys)
    if rem:
        carry, tail = jax.lax.scan(f, carry, None, length=rem, unroll=min(unroll, rem))
        ys = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), ys, tail)
    return carry, ys


def _segment_length(length: int) -> int:
    """Steps per checkpointed segment: ~√length, a divisor of `length` where one lies within a
    factor 1.5 of √length (no remainder loop: one copy of the loop less to compile)."""
    root = math.isqrt(length)
    divisors = [d for d in range(max(1, (2 * root) // 3), (3 * root) // 2 + 1) if length % d == 0]
    return min(divisors, key=lambda d: abs(d - root)) if divisors else root


def simulate(
    params: HHParams,
    stimulus: AbstractStimulus | float | Array = 0.0,
    *,
    duration: float,
    dt: float,
    stepper: AbstractStepper | diffrax.AbstractSolver = ExpEuler(),
    y0: HHState | None = None,
    record: Sequence[str] = ("V",),
    record_every: int = 1,
    max_spikes: int | None = None,
    t0: float = 0.0,
    throw: bool = True,
    unroll: int = 1,
    checkpoint: bool = False,
    spike_interpolation: str = "hermite",
    stepsize_controller: diffrax.AbstractStepSizeController = diffrax.ConstantStepSize(),
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int | None = None,
    population: str = "batched",
) -> SimulationResult:
    """Simulate a population of HH neurons with a scan stepper or any Diffrax solver.

    The population shape is the broadcast of the parameter fields, the stimulus' output and
    `y0`. Traces are decimated inside the scan, so memory scales with the samples kept, not the
    steps taken; spikes are detected at every step. The function is jit-, vmap- and
    grad-compatible; repeated calls with new parameter values or stimuli of the same shape reuse
    one compilation.

    **Arguments:**

    - `params`: `HHParams`.
    - `stimulus`: injected current density: an `AbstractStimulus`, or a constant (µA/cm²,
      scalar or population array). Default 0.0.
    - `duration`: simulated time, ms, a whole number of steps `dt`.
    - `dt`: step, ms, > 0.
    - `stepper`: a scan stepper (`ExpEuler()`, the default; `ExpRK4()`, `ExpMidpoint()`,
      `RK4()`, `Euler()`), or any `diffrax.AbstractSolver` (e.g. ``diffrax.Tsit5()``,
      ``diffrax.Kvaerno5()``), which is then run by `diffrax.diffeqsolve` with traces saved on
      the `dt` grid and spikes located on the solver's dense output.
      On the CPU, `ExpEuler` runs its whole time loop in a fused C++ kernel where it applies
      (see `ExpEuler`; same results to rounding, ~3× faster for populations).
    - `y0`: initial `HHState`. Default: V = −65 mV with gates at steady state.
    - `record`: names of traces to keep, from ``V m h n INa IK IL gNa gK gL I``. Default
      ``("V",)``; ``()`` keeps none.
    - `record_every`: keep every k-th step (k ≥ 1). Default 1.
    - `max_spikes`: rows of `spike_times` (per neuron). Default
      ``min(ceil(duration/2 ms) + 1, 1000)`` (a 500 Hz ceiling up to 2 s, then 1000 rows, so
      that the buffer does not grow with the duration); counts stay exact beyond it and
      `result.spike_overflow` flags the neurons whose times were truncated. 0 records counts
      only. A run whose traces, spike buffer and state cannot fit in the available memory
      raises `ValueError` with the estimate before anything is allocated.
    - `t0`: start time, ms: a number or a 0-d array (it may be traced, e.g. under the caller's
      `jax.jit`). Default 0.0. `t0` and `dt` are runtime values of the compiled program (only
      the step count ``duration/dt`` fixes shapes): calls that differ only in them reuse one
      compilation.
    - `throw`: raise (via `eqx.error_if`) if the state becomes non-finite, or if traced
      parameters (inside `jax.jit`/`grad`/`vmap`, where `HHParams` cannot check them) are invalid:
      C ≤ 0, a negative conductance, a non-finite V_th (the message names the field). Default
      True; with False, check `result.finite` (False in all these cases).
    - `unroll`: `lax.scan` unroll factor of the inner loop. Default 1.
    - `spike_interpolation`: scan steppers only: ``"hermite"`` (default; cubic Hermite on the
      step's end values and dV/dt, spike-time error ~dt⁴) or ``"linear"`` (chord, ~dt²).
    - `stepsize_controller`: Diffrax solvers only (this, `adjoint`, `max_steps` or a
      non-default `population` given with a scan stepper raise `ValueError`). Default ``diffrax.ConstantStepSize()``
      (steps of `dt`); ``diffrax.PIDController(rtol=..., atol=...)`` for adaptive steps. The
      stimulus' `jump_times(t0, t1)` are added as ``jump_ts`` automatically, so no pulse or step edge
      is stepped over.
    - `adjoint`: Diffrax solvers only. Default
      ``diffrax.RecursiveCheckpointAdjoint(checkpoints=max_steps)`` (gradients of traces *and*
      spike times; one checkpoint per step, because with the installed jax 0.10 / equinox 0.13
      the recomputing variant, ``checkpoints < steps taken``, returns wrong gradients — see
      docs/accuracy.md); ``diffrax.BacksolveAdjoint()`` gives gradients of the recorded traces
      only, in O(1) memory.
    - `max_steps`: Diffrax solvers only: step budget. Default: ``n_steps + 1`` for a constant
      step, else ``max(16384, 250·duration/1 ms)``.
    - `population`: Diffrax solvers only: ``"batched"`` (default; one ODE over the whole
      population, one step-size sequence; on CPU within timing noise of ``"vmap"``, see
      docs/accuracy.md) or ``"vmap"`` (one ODE per neuron under `jax.vmap`, each with its own
      step size).
    - `checkpoint`: split the time loop into ~√n segments wrapped in `jax.checkpoint`, so the
      memory of a reverse-mode gradient grows like √(steps) instead of steps, for about one
      extra forward pass of compute. Default False.

    **Returns:** a `SimulationResult`.

    **Example:**

    ```python
    import hh_jax
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=200.0, dt=0.01)
    r.spike_count, r.V.shape  # 12 spikes; (20001,)
    ```
    """
    a = check_family(params, stimulus, duration=duration, dt=dt, t0=t0, y0=y0, record=record,
                     record_every=record_every, max_spikes=max_spikes, throw=throw)
    stimulus, duration, dt, t0, t0_known, n_steps = a.stimulus, a.duration, a.dt, a.t0, a.t0_known, a.n_steps
    record, record_every, max_spikes, throw = a.record, a.record_every, a.max_spikes, a.throw
    params, params_ok = check_traced_params(params, throw)
    use_diffrax = isinstance(stepper, diffrax.AbstractSolver)
    if not (use_diffrax or isinstance(stepper, AbstractStepper)):
        raise TypeError(
            "stepper must be an AbstractStepper (e.g. ExpEuler()) or a diffrax.AbstractSolver "
            f"(e.g. diffrax.Tsit5()), got {stepper!r}."
        )
    if spike_interpolation not in SPIKE_INTERPOLATIONS:
        raise ValueError(
            f"spike_interpolation must be one of {SPIKE_INTERPOLATIONS}, got {spike_interpolation!r}."
        )
    checkpoint = as_bool("checkpoint", checkpoint)
    if not use_diffrax:
        _check_no_diffrax_options(stepper, stepsize_controller, adjoint, max_steps, population)
    if max_spikes is None:
        max_spikes = default_max_spikes(duration)
    unroll = as_int("unroll", unroll, minimum=1)
    dtype = a.dtype  # the working dtype: the parameters' and a strongly typed y0's
    stimulus = stimulus_in_dtype(stimulus, dtype)  # a float32 current never meets a float64 state
    shape = _population_shape(params, stimulus, y0, 0.0 if t0_known is None else t0_known, dtype)
    # memory up front: refuse (with the estimate) what cannot fit, before anything is allocated
    memory = dict(shape=shape, n_steps=n_steps, record=record, record_every=record_every,
                  max_spikes=max_spikes, dtype=dtype)
    if not use_diffrax:  # the loop records each crossing's bracket, refined after it
        memory["spike_interpolation"] = spike_interpolation
    check_memory(**memory, saved_states=4 if use_diffrax else 0)
    if y0 is None:  # jitted: one compilation instead of one per eager operation (first call)
        y0 = default_y0(shape, dtype)
    else:
        # The initial state in the working dtype (HHState(V=-65.0, ...) holds weakly typed
        # scalars, which follow the parameters), so that Python-number and array initial states
        # share one compilation.
        y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), y0)
    # t0 and dt enter the compiled programs as 0-d arrays (only n_steps fixes shapes): a new
    # start time or step reuses the compilation (a closed loop of one-step calls does not
    # recompile per step).
    times = dict(t0=jnp.asarray(t0, dtype), dt=jnp.asarray(dt, dtype))
    grid = dict(duration=n_steps * dt, dt=dt)  # the result's static fields, set outside the jit
    if use_diffrax:
        result = _simulate_diffrax(
            params, stimulus, y0, stepper, stepsize_controller, adjoint, max_steps, population,
            n_steps=n_steps, dt=dt, t0=t0_known, times=times, dtype=dtype, record=record,
            record_every=int(record_every), max_spikes=int(max_spikes), shape=shape, throw=throw,
        )
        return _finish(result, grid, params_ok)
    config = _Config(
        n_steps=n_steps,
        **times,
        record=record,
        record_every=int(record_every),
        max_spikes=int(max_spikes),
        shape=shape,
        unroll=int(unroll),
        checkpoint=bool(checkpoint),
        throw=bool(throw),
        spike_interpolation=spike_interpolation,
    )
    if isinstance(stepper, ExpEuler) and stepper.fused is not False:
        reason = unavailable_reason(stimulus, config, dtype)
        if reason is None:
            rows, cols = _table_shape(stimulus, config, dtype)
            hermite = max_spikes > 0 and spike_interpolation == "hermite"
            if rows > 1:  # the current tabulated per step (at mid-steps, and at ends for Hermite)
                check_memory(**memory, table_elements=rows * cols * (2 if hermite else 1))
            return _finish(_run_fused(params, stimulus, y0, stepper, config), grid, params_ok)
        if stepper.fused:
            raise ValueError(f"stepper=ExpEuler(fused=True): the fused kernel cannot run this simulation: {reason}.")
    return _finish(_run(params, stimulus, y0, stepper, config), grid, params_ok)


def _finish(result: SimulationResult, grid: dict, params_ok) -> SimulationResult:
    """The result with its static `duration`/`dt` set (outside the jit, where they are traced)
    and `finite` False where a traced parameter was invalid (`check_traced_params`)."""
    if params_ok is not None:
        grid = dict(grid, finite=result.finite & params_ok)
    return dataclasses.replace(result, **grid)


def _simulate_diffrax(params, stimulus, y0, solver, controller, adjoint, max_steps, population, *,
                      throw, dtype, **grid):
    controller, adjoint, config = prepare_diffrax(
        stimulus, controller, adjoint, max_steps, population, dtype, throw=throw, **grid
    )
    ts, ys, final, count, buf, ok = run_diffrax(params, stimulus, y0, solver, controller, adjoint, config)
    return _diffrax_result(params, stimulus, config, ts, ys, final, count, buf, ok)


@eqx.filter_jit
def _diffrax_result(params, stimulus, config, ts, ys, final, count, buf, ok):
    traces = _observe_samples(params, stimulus, ys, ts, config.record, config.shape)
    result = SimulationResult(
        t=ts, spike_count=count, spike_times=buf, final_state=final, finite=ok & state_is_finite(final),
        **traces,
    )
    return maybe_throw(result, config.throw)


def _common_dtype(params: HHParams, y0: HHState, shape):
    """Parameters and initial state in one dtype (`simulate` gave y0 the working dtype), the
    state broadcast to the population."""
    dtype = y0.V.dtype
    y0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).astype(dtype), y0)
    params = jax.tree_util.tree_map(lambda x: x.astype(dtype), params)
    return params, y0, dtype


_RECORD_ALWAYS = 64
"""Populations up to this size record crossing brackets in every step (masked), without a
`lax.cond`: at N = 1 the cond (and its transpose in `jax.grad`) cost ~2 µs per step, more than
the record; at N = 100 both are the same, and for large N the cond skips an O(N) serial scatter
and two derivative evaluations in steps without a crossing."""


def _scan_arrays(params, stimulus, y0: HHState, stepper: AbstractStepper, config: _Config):
    """The `lax.scan` loop: `params` and `y0` in one dtype, broadcast to ``config.shape``.

    **Returns:** (final `HHState`, spike counts, the `Crossings` record (``[S, N]`` rows, for
    `refine`), ``{name: [samples, *shape]}`` for the recorded names, sample times).
    """
    shape = config.shape
    dtype = y0.V.dtype
    args = (params, stimulus)
    dt = jnp.asarray(config.dt, dtype)
    t0 = jnp.asarray(config.t0, dtype)
    S = config.max_spikes
    N = math.prod(shape)
    V_th = jnp.broadcast_to(params.V_th, shape)
    hermite = config.spike_interpolation == "hermite"

    def one_step(carry, _):
        y, k, count, crossings = carry
        t = t0 + k.astype(dtype) * dt
        y_new = stepper.step(t, y, dt, args)
        crossed = (y.V < V_th) & (y_new.V >= V_th)
        if S > 0:
            # Only what `refine` needs, and only in steps where some neuron crossed (the
            # scatter into the record is a serial O(N) loop on CPU).
            def record(crossings):
                ends = (y.V, y_new.V)
                if hermite:  # dV/dt at both ends, the current at t and t + dt
                    ends += (derivatives(params, y, injected_current(stimulus, t)).V,
                             derivatives(params, y_new, injected_current(stimulus, t + dt)).V)
                return record_brackets(crossings, count, crossed, k, ends)

            if N <= _RECORD_ALWAYS:  # a cond costs more than the record it skips
                crossings = record(crossings)
            else:
                crossings = jax.lax.cond(jnp.any(crossed), record, lambda c: c, crossings)
        count = count + crossed.astype(count.dtype)
        return (y_new, k + 1, count, crossings), None

    ck_inner = config.checkpoint and not config.record
    # Reverse mode: each step is rematerialised on the backward pass, so that only the carry is
    # saved per step (as in a plain checkpointed scan), not the step's ~80 intermediates (1.2 GB
    # at N = 10³, 4 000 steps, f32). Within √T segments too: the segment's recomputation then
    # stores carries only (cache-sized), for one more forward evaluation of each step. No cost
    # in a run without derivatives (`prevent_cse=False`: no optimisation barrier).
    step = jax.checkpoint(one_step, prevent_cse=False)

    def run_steps(carry, n):
        if n == 0:
            return carry
        if n == 1:  # e.g. record_every=1: no inner loop (less to compile)
            return step(carry, None)[0]
        carry, _ = _scan(step, carry, n, checkpoint=ck_inner, unroll=config.unroll)
        return carry

    def observe_at(y, t):
        I = stimulus(t) if uses_current(config.record) else None
        return {name: observe(name, params, y, I, shape) for name in config.record}

    carry = (
        y0,
        jnp.asarray(0, jnp.int32),
        jnp.zeros(shape, jnp.int32),
        empty_crossings(S, N, dtype, config.spike_interpolation),
    )
    k_every = config.record_every
    n_samples = config.n_steps // k_every
    remainder = config.n_steps - n_samples * k_every
    first = observe_at(y0, t0)

    def outer(carry, _):
        carry = run_steps(carry, k_every)
        y, k = carry[0], carry[1]
        return carry, observe_at(y, t0 + k.astype(dtype) * dt)

    if config.record:
        carry, traces = _scan(outer, carry, n_samples, checkpoint=config.checkpoint, unroll=1)
        traces = {k: jnp.concatenate([first[k][None], v], axis=0) for k, v in traces.items()}
    else:
        carry = run_steps(carry, n_samples * k_every)
        traces = {}
    carry = run_steps(carry, remainder)
    y, _, count, crossings = carry
    if config.record:
        t = sample_times(t0, dt, n_samples * k_every, k_every, dtype)
    else:  # nothing recorded: no sample times either (an O(steps) array otherwise)
        t = jnp.zeros((0,), dtype)
    return y, count, crossings, traces, t


def _spike_times(params, crossings, config: _Config, dtype):
    """The loop's `Crossings` refined into spike times, ``[S, *shape]`` (ms, +inf padded)."""
    shape = config.shape
    V_th = jnp.broadcast_to(params.V_th, shape).reshape(-1)
    times = refine(crossings, t0=jnp.asarray(config.t0, dtype), dt=jnp.asarray(config.dt, dtype),
                   V_th=V_th, interpolation=config.spike_interpolation)
    return times.reshape((config.max_spikes,) + shape)


@eqx.filter_jit
def _run(params, stimulus, y0: HHState, stepper: AbstractStepper, config: _Config) -> SimulationResult:
    params, y0, dtype = _common_dtype(params, y0, config.shape)
    y, count, crossings, traces, t = _scan_arrays(params, stimulus, y0, stepper, config)
    result = SimulationResult(
        t=t,
        spike_count=count,
        spike_times=_spike_times(params, crossings, config, dtype),
        final_state=y,
        finite=state_is_finite(y),
        **traces,
    )
    return maybe_throw(result, config.throw)  # inside the jit: no eager compilation of the check


@eqx.filter_custom_jvp
def _fused_core(params, stimulus, y0, t0, dt, *, stepper, config):
    # t0, dt: positional (differentiable) primals; `config` arrives without them.
    config = dataclasses.replace(config, t0=t0, dt=dt)
    return fused_arrays(params, stimulus, y0, config=config, staggered=stepper.staggered,
                        states=state_names(config.record))


@_fused_core.def_jvp
def _fused_core_jvp(primals, tangents, *, stepper, config):
    # The derivatives of the lax.scan loop (same mathematics; its primal replaces the kernel's).
    names = state_names(config.record)
    scan_config = dataclasses.replace(config, record=tuple(names), throw=False)

    def scan_arrays(params, stimulus, y0, t0, dt):
        y, count, crossings, traces, _ = _scan_arrays(
            params, stimulus, y0, stepper, dataclasses.replace(scan_config, t0=t0, dt=dt))
        return y, count, crossings, traces

    return eqx.filter_jvp(scan_arrays, primals, tangents)


@eqx.filter_jit
def _run_fused(params, stimulus, y0: HHState, stepper: ExpEuler, config: _Config) -> SimulationResult:
    """`_run` for `ExpEuler` with the whole time loop in the fused CPU kernel (`_fused.py`)."""
    shape = config.shape
    params, y0, dtype = _common_dtype(params, y0, shape)
    final, count, crossings, states = _fused_core(
        params, stimulus, y0, jnp.asarray(config.t0, dtype), jnp.asarray(config.dt, dtype),
        stepper=stepper, config=dataclasses.replace(config, t0=None, dt=None),
    )
    traces = {}
    if config.record:
        t = sample_times(config.t0, config.dt, config.n_steps, config.record_every, dtype)
        zeros = jnp.zeros((t.shape[0],) + shape, dtype)
        ys = HHState(*(states.get(v, zeros) for v in "Vmhn"))
        traces = _observe_samples(params, stimulus, ys, t, config.record, shape)
    else:
        t = jnp.zeros((0,), dtype)
    result = SimulationResult(
        t=t, spike_count=count, spike_times=_spike_times(params, crossings, config, dtype), final_state=final,
        finite=state_is_finite(final),
        **traces,
    )
    return maybe_throw(result, config.throw)
