"""`simulate`: run a population of HH neurons on a backend; record, detect spikes."""

import dataclasses
from typing import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from ._backends import AbstractBackend, DiffraxAdapter, choose
from ._custom_types import Array
from ._params import HHParams
from ._prepare import Problem, assemble, default_y0, prepare
from ._spikes import AbstractSpikeInterpolation, HermiteSpikes
from ._result import SimulationResult
from ._steppers import AbstractStepper, ExpEuler
from ._stimulus import AbstractStimulus
from ._vector_field import HHState


def simulate(
    params: HHParams,
    stimulus: AbstractStimulus | float | Array = 0.0,
    *,
    duration: float,
    dt: float,
    stepper: AbstractStepper | diffrax.AbstractSolver | None = None,
    backend: AbstractBackend | None = None,
    y0: HHState | None = None,
    record: Sequence[str] = ("V",),
    record_every: int = 1,
    max_spikes: int | None = None,
    t0: float = 0.0,
    throw: bool = True,
    spike_interpolation: AbstractSpikeInterpolation = HermiteSpikes(),
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
    - `stepper`: the mathematics of a step: an `AbstractStepper` (`ExpEuler()`, the default;
      `ExpRK4()`, `ExpMidpoint()`, `RK4()`, `Euler()`), or a `diffrax.AbstractSolver` (e.g.
      ``diffrax.Tsit5()``), shorthand for ``backend=DiffraxAdapter(solver)``. Default None:
      `ExpEuler()` (with a `DiffraxAdapter` backend: the adapter's solver).
    - `backend`: how the steps are run (an `AbstractBackend`): `ScanLoop()` (the `lax.scan`
      loop, every device), `FusedCPU()` (`ExpEuler`'s loop in a fused C++ kernel on the CPU;
      same results to rounding, ~3× faster for populations), `PallasGPU()` (`ExpEuler`'s loop
      in one Pallas kernel on a GPU) or
      ``DiffraxAdapter(solver, stepsize_controller=..., adjoint=..., max_steps=...,
      population=...)`` (traces saved on the `dt` grid, spikes located on the solver's dense
      output). Default None: chosen automatically (a Diffrax solver → `DiffraxAdapter`;
      `ExpEuler` → `PallasGPU` on a GPU, `FusedCPU` on the CPU where the kernel applies; else
      `ScanLoop`). A backend that cannot
      run the simulation, or contradicts `stepper` (a `DiffraxAdapter` with a fixed-step
      stepper, a `ScanLoop` with a Diffrax solver), raises `ValueError` saying why.
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
    - `spike_interpolation`: fixed-step loops only (`ScanLoop`, `FusedCPU`, `PallasGPU`):
      `HermiteSpikes()` (default; cubic Hermite on the step's end values and dV/dt, spike-time
      error ~dt⁴) or `LinearSpikes()` (chord, ~dt²).

    **Returns:** a `SimulationResult`.

    **Example:**

    ```python
    import hh_jax
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=200.0, dt=0.01)
    r.spike_count, r.V.shape  # 12 spikes; (20001,)
    ```
    """
    prepared = prepare(params, stimulus, duration=duration, dt=dt, y0=y0, record=record,
                       record_every=record_every, max_spikes=max_spikes, t0=t0, throw=throw,
                       spike_interpolation=spike_interpolation)
    stepper, backend = resolve_backend(stepper, backend, prepared)
    result = _core(prepared.params, prepared.stimulus, prepared.y0, stepper, backend, prepared.problem)
    return finish(result, prepared)


def resolve_backend(stepper, backend, prepared) -> tuple:
    """``(stepper, backend)`` to run, the backend prepared (`AbstractBackend.prepare`): the one
    passed, or the automatic choice (`_backends.choose`); `ValueError` saying why where the
    backend cannot run the simulation (a contradictory stepper included)."""
    if stepper is not None and not isinstance(stepper, (AbstractStepper, diffrax.AbstractSolver)):
        raise TypeError(
            "stepper must be an AbstractStepper (e.g. ExpEuler()) or a diffrax.AbstractSolver "
            f"(e.g. diffrax.Tsit5()), got {stepper!r}."
        )
    if backend is not None and not isinstance(backend, AbstractBackend):
        raise TypeError(
            "backend must be an AbstractBackend (e.g. hh_jax.ScanLoop(), hh_jax.FusedCPU(), "
            f"hh_jax.DiffraxAdapter(diffrax.Tsit5())) or None (automatic), got {backend!r}."
        )
    if stepper is None and not isinstance(backend, DiffraxAdapter):
        stepper = ExpEuler()
    if backend is None:
        backend = choose(stepper, prepared)
    reason = backend.unavailable_reason(stepper, prepared)
    if reason is not None:
        raise ValueError(f"backend {type(backend).__name__} cannot run this simulation: {reason}.")
    if isinstance(backend, DiffraxAdapter):
        stepper = None  # the adapter holds the solver
    return stepper, backend.prepare(stepper, prepared)


def finish(result: SimulationResult, prepared) -> SimulationResult:
    """The result with its static `duration`/`dt` set (outside the jit, where they are traced)
    and `finite` False where a traced parameter was invalid (`check_traced_params`)."""
    grid = prepared.grid
    if prepared.params_ok is not None:
        grid = dict(grid, finite=result.finite & prepared.params_ok)
    return dataclasses.replace(result, **grid)


@eqx.filter_jit
def _core(params, stimulus, y0: HHState | None, stepper, backend: AbstractBackend, problem: Problem) -> SimulationResult:
    """The one jitted program of every backend: `params` and `y0` in the working dtype and
    broadcast to the population, the backend's loop, the result (`assemble`). `problem.t0` and
    `problem.dt` are traced: calls differing only in them (or in parameter values) share one
    compilation."""
    shape = problem.shape
    dtype = problem.dtype
    if y0 is None:  # built here: no compilation of its own on a first call
        y0 = default_y0(shape, dtype)
    y0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).astype(dtype), y0)
    params = jax.tree_util.tree_map(lambda x: x.astype(dtype), params)
    out = backend.run(params, stimulus, y0, stepper, problem)
    return assemble(params, out.final, out.spike_count, out.spikes, out.traces, out.t, problem, out.ok)
