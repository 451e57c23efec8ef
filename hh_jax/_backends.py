"""Backends: the loops that run a simulation, as objects behind one small interface.

The stepper (`ExpEuler`, `RK4`, …) describes the mathematics of one step; a backend is *how* the
steps are run: the `lax.scan` loop (`ScanLoop`), the fused CPU kernel (`FusedCPU`: reverse mode
by its discrete adjoint, `FusedAdjoint`, forward mode by a `ScanLoop`'s tangents), or Diffrax
(`DiffraxAdapter`, holding the solver, the step-size controller, the adjoint, the step budget
and the population mode, as Optimistix wraps other libraries' solvers in adapters). `simulate` chooses one automatically (`choose`) or runs
the one passed as ``backend=``.

The contract (`AbstractBackend`): `unavailable_reason` says in Python, before anything is traced,
why a backend cannot run a prepared simulation (None: it can); `prepare` makes the backend's own
Python-level checks (memory, options) and returns the backend to run, its defaults filled in;
`run` runs the loop inside `simulate`'s one jitted core and returns a `Loop`, which
`_prepare.assemble` turns into the `SimulationResult`.

A fused loop (`AbstractFusedLoop`) only implements `fused_arrays` (final state, spike counts, the
`Crossings` record, the state traces) and `kernel_unavailable_reason`: `FusedCPU` (the C++ kernel)
and `PallasGPU` (the Pallas kernel); its derivatives are those of its `derivative` `ScanLoop`, or
for `FusedCPU` by default the kernel's adjoint (`_adjoint.py`).
"""

import abc
import dataclasses
import math
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from . import _adjoint, _fused, _pallas
from ._custom_types import Array
from ._diffrax import AbstractPopulationMode, BatchedODE, check_population, resolve_options, run_diffrax
from ._observables import observe, state_names, uses_current
from ._prepare import Prepared, Problem, sample_times
from ._spikes import Crossings, empty_crossings, record_brackets
from ._steppers import AbstractStepper, ExpEuler
from ._validate import as_bool, as_int
from ._vector_field import HHState, derivatives, injected_current


class Loop(NamedTuple):
    """What a backend's `run` returns (all inside the jit).

    - `final`: the final `HHState`, population shape.
    - `spike_count`: spikes per neuron, int32 ``[*shape]``.
    - `spikes`: a `_spikes.Crossings` record (``[S, N]``: each crossing's step and bracket
      values, refined into times after the loop by `_spikes.refine`), or spike times
      ``[S, *shape]`` (ms, +inf padded) where the backend located them itself.
    - `traces`: ``{name: [samples, *shape]}`` for the recorded names.
    - `t`: the sample times, ms ``[samples]`` (``[0]`` when nothing is recorded).
    - `ok`: a bool scalar (False where a solver failed), or None.
    """

    final: HHState
    spike_count: Array
    spikes: Crossings | Array
    traces: dict
    t: Array
    ok: Array | None = None


class AbstractBackend(eqx.Module):
    """How a simulation's steps are run; pass one as `simulate(..., backend=...)`.

    Subclasses implement `unavailable_reason` and `run`, and may override `prepare`.

    **Example:** a backend of one's own, delegating to the scan loop:

    ```python
    class Logged(hh_jax.AbstractBackend):
        inner: hh_jax.ScanLoop

        def unavailable_reason(self, stepper, prepared):
            return self.inner.unavailable_reason(stepper, prepared)

        def run(self, params, stimulus, y0, stepper, problem):
            print("tracing", problem.n_steps, "steps")
            return self.inner.run(params, stimulus, y0, stepper, problem)

    hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=1.0, dt=0.01, backend=Logged(hh_jax.ScanLoop()))
    ```
    """

    @abc.abstractmethod
    def unavailable_reason(self, stepper, prepared: Prepared) -> str | None:
        """Why this backend cannot run `stepper` on the `prepared` simulation (a phrase for an
        error message), or None where it can. Python only: nothing is traced."""

    def prepare(self, stepper, prepared: Prepared) -> "AbstractBackend":
        """The backend's Python-level checks before the run (`ValueError` naming the problem, e.g.
        a run that cannot fit in memory); **returns** the backend to run, its defaults filled
        in. Default: the memory check of a fixed-step loop that records crossing brackets."""
        problem = prepared.problem
        problem.memory(spike_interpolation=problem.spike_interpolation)
        return self

    @abc.abstractmethod
    def run(self, params, stimulus, y0: HHState, stepper, problem: Problem) -> Loop:
        """Run the loop, inside the jit. `params` and `y0` are in the working dtype, broadcast
        to ``problem.shape``. **Returns:** a `Loop`."""


def observe_samples(params, stimulus, ys: HHState, ts, record, shape) -> dict:
    """The `record`ed observables (`_observables.OBSERVABLES`) of the states ``ys`` stacked over
    the sample times ``ts`` (ms): ``{name: [samples, *shape]}``; the stimulus is evaluated at the
    samples only where an observable reads it."""
    I = jax.vmap(stimulus)(ts) if uses_current(record) else None
    at = lambda name: jax.vmap(lambda y, i: observe(name, params, y, i, shape),
                               in_axes=(0, None if I is None else 0))(ys, I)
    return {name: at(name) for name in record}


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


_RECORD_ALWAYS = 64
"""Populations up to this size record crossing brackets in every step (masked), without a
`lax.cond`: at N = 1 the cond (and its transpose in `jax.grad`) cost ~2 µs per step, more than
the record; at N = 100 both are the same, and for large N the cond skips an O(N) serial scatter
and two derivative evaluations in steps without a crossing (on the CPU only: elsewhere the cond
lowers to a conditional whose branch index XLA:GPU copies to the host at every step, so there
the record is always written)."""


def _not_a_scan_stepper(stepper) -> str | None:
    if isinstance(stepper, AbstractStepper):
        return None
    return (f"it runs a fixed-step stepper (an AbstractStepper, e.g. ExpEuler()), got "
            f"stepper={stepper!r} (a Diffrax solver runs in DiffraxAdapter(solver))")


class ScanLoop(AbstractBackend):
    """The `lax.scan` time loop: any `AbstractStepper`, on every JAX device (the GPU path).

    Traces are decimated inside the loop (memory scales with the samples kept); each crossing of
    ``V_th`` is recorded with its bracket and refined after the loop.

    **Arguments:**

    - `unroll`: `lax.scan` unroll factor of the inner loop, ≥ 1. Default 1.
    - `checkpoint`: split the time loop into ~√n segments wrapped in `jax.checkpoint`, so the
      memory of a reverse-mode gradient grows like √(steps) instead of steps, for about one
      extra forward pass of compute. Default False.

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.01, backend=ScanLoop(checkpoint=True))``.
    """

    unroll: int = eqx.field(default=1, static=True, converter=lambda x: as_int("ScanLoop.unroll", x, minimum=1))
    checkpoint: bool = eqx.field(default=False, static=True,
                                 converter=lambda x: as_bool("ScanLoop.checkpoint", x))

    def unavailable_reason(self, stepper, prepared: Prepared) -> str | None:
        return _not_a_scan_stepper(stepper)

    def run(self, params, stimulus, y0: HHState, stepper, problem: Problem) -> Loop:
        y, count, crossings, traces, t = self.arrays(params, stimulus, y0, stepper, problem)
        return Loop(y, count, crossings, traces, t)

    def arrays(self, params, stimulus, y0: HHState, stepper, problem: Problem):
        """The loop itself. **Returns:** (final `HHState`, spike counts, the `Crossings` record,
        ``{name: [samples, *shape]}`` for the recorded names, sample times)."""
        config = problem
        shape = config.shape
        dtype = y0.V.dtype
        args = (params, stimulus)
        dt = jnp.asarray(config.dt, dtype)
        t0 = jnp.asarray(config.t0, dtype)
        S = config.max_spikes
        N = math.prod(shape)
        V_th = jnp.broadcast_to(params.V_th, shape)
        hermite = config.spike_interpolation.bracket_size == 4  # with dV/dt at both ends

        def one_step(carry, _):
            y, k, count, crossings = carry
            t = t0 + k.astype(dtype) * dt
            y_new = stepper.step(t, y, dt, args)
            crossed = (y.V < V_th) & (y_new.V >= V_th)
            if S > 0:
                # Only what `refine` needs; on a CPU population, only in steps where some neuron
                # crossed (the scatter into the record is a serial O(N) loop there).
                def record(crossings):
                    ends = (y.V, y_new.V)
                    if hermite:  # dV/dt at both ends, the current at t and t + dt
                        ends += (derivatives(params, y, injected_current(stimulus, t)).V,
                                 derivatives(params, y_new, injected_current(stimulus, t + dt)).V)
                    return record_brackets(crossings, count, crossed, k, ends)

                if N <= _RECORD_ALWAYS:  # a cond costs more than the record it skips
                    crossings = record(crossings)
                else:  # the cond on the CPU only (a host sync per step on a GPU)
                    skip = lambda c: jax.lax.cond(jnp.any(crossed), record, lambda c: c, c)
                    crossings = jax.lax.platform_dependent(crossings, cpu=skip, default=record)
            count = count + crossed.astype(count.dtype)
            return (y_new, k + 1, count, crossings), None

        ck_inner = self.checkpoint and not config.record
        # Reverse mode: each step is rematerialised on the backward pass, so that only the carry
        # is saved per step (as in a plain checkpointed scan), not the step's ~80 intermediates
        # (1.2 GB at N = 10³, 4 000 steps, f32). Within √T segments too: the segment's
        # recomputation then stores carries only, for one more forward evaluation of each step.
        # No cost in a run without derivatives (`prevent_cse=False`: no optimisation barrier).
        step = jax.checkpoint(one_step, prevent_cse=False)

        def run_steps(carry, n):
            if n == 0:
                return carry
            if n == 1:  # e.g. record_every=1: no inner loop (less to compile)
                return step(carry, None)[0]
            carry, _ = _scan(step, carry, n, checkpoint=ck_inner, unroll=self.unroll)
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
            carry, traces = _scan(outer, carry, n_samples, checkpoint=self.checkpoint, unroll=1)
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


class AbstractFusedLoop(AbstractBackend):
    """A loop fused into one kernel call whose derivatives (`jax.grad`, `jax.jvp`) are those of
    the `lax.scan` loop `derivative` (same mathematics; its primal is replaced by the kernel's,
    through a custom JVP), or, for a `FusedAdjoint` `derivative`, the kernel's adjoint in reverse
    mode. Subclasses implement `fused_arrays` and `unavailable_reason`."""

    derivative: eqx.AbstractVar["ScanLoop | FusedAdjoint"]

    @abc.abstractmethod
    def fused_arrays(self, params, stimulus, y0: HHState, stepper, problem: Problem, states: str):
        """Run the kernel (`problem.t0`, `problem.dt` possibly traced). **Returns:** (final
        `HHState`, spike counts ``[*shape]``, the `Crossings` record ``[S, N]``,
        ``{v: [samples, *shape]}`` for the state variables v in `states`, a subset of
        ``"Vmhn"``)."""

    def unavailable_reason(self, stepper, prepared: Prepared) -> str | None:
        if not isinstance(stepper, ExpEuler):
            return f"it runs ExpEuler only, got stepper={stepper!r}"
        return self.kernel_unavailable_reason(prepared)

    @abc.abstractmethod
    def kernel_unavailable_reason(self, prepared: Prepared) -> str | None:
        """Why the kernel cannot run the `prepared` simulation of `ExpEuler` (None: it can)."""

    def prepare(self, stepper, prepared: Prepared) -> "AbstractFusedLoop":
        """The memory check, with the stimulus' table (a fused loop tabulates the current at
        mid-steps, and at step ends for Hermite brackets, once per step unless it is
        time-invariant)."""
        p = prepared.problem
        rows, cols = _fused._table_shape(prepared.stimulus, p.shape, p.n_steps, p.dtype)
        hermite = p.max_spikes > 0 and p.spike_interpolation.bracket_size == 4
        table = rows * cols * (2 if hermite else 1) if rows > 1 else 0
        p.memory(spike_interpolation=p.spike_interpolation, table_elements=table)
        return self

    def run(self, params, stimulus, y0: HHState, stepper, problem: Problem) -> Loop:
        shape = problem.shape
        dtype = y0.V.dtype
        final, count, crossings, states = _fused_core(
            params, stimulus, y0, jnp.asarray(problem.t0, dtype), jnp.asarray(problem.dt, dtype),
            backend=self, stepper=stepper, problem=dataclasses.replace(problem, t0=None, dt=None),
        )
        traces = {}
        if problem.record:
            t = sample_times(problem.t0, problem.dt, problem.n_steps, problem.record_every, dtype)
            zeros = jnp.zeros((t.shape[0],) + shape, dtype)
            ys = HHState(*(states.get(v, zeros) for v in "Vmhn"))
            traces = observe_samples(params, stimulus, ys, t, problem.record, shape)
        else:
            t = jnp.zeros((0,), dtype)
        return Loop(final, count, crossings, traces, t)


@eqx.filter_custom_jvp
def _fused_core(params, stimulus, y0, t0, dt, *, backend, stepper, problem):
    # t0, dt: positional (differentiable) primals; `problem` arrives without them.
    problem = dataclasses.replace(problem, t0=t0, dt=dt)
    return backend.fused_arrays(params, stimulus, y0, stepper, problem, state_names(problem.record))


@_fused_core.def_jvp
def _fused_core_jvp(primals, tangents, *, backend, stepper, problem):
    names = state_names(problem.record)
    if isinstance(backend.derivative, FusedAdjoint):  # reverse mode by the kernel's adjoint
        return _adjoint.fused_jvp(primals, tangents, backend=backend, stepper=stepper,
                                  problem=problem, states=names,
                                  ck_every=backend.derivative.segment(problem.n_steps))
    # The derivatives of the lax.scan loop (same mathematics; its primal replaces the kernel's).
    scan_problem = dataclasses.replace(problem, record=tuple(names), throw=False)

    def scan_arrays(params, stimulus, y0, t0, dt):
        y, count, crossings, traces, _ = backend.derivative.arrays(
            params, stimulus, y0, stepper, dataclasses.replace(scan_problem, t0=t0, dt=dt))
        return y, count, crossings, traces

    return eqx.filter_jvp(scan_arrays, primals, tangents)


class FusedAdjoint(eqx.Module):
    """The derivatives of `FusedCPU` with reverse mode run by the kernel: the discrete adjoint.

    `jax.grad`/`jax.vjp` run the exact derivative of the kernel's discrete exponential-Euler map
    backwards in the kernel: the forward call stores the state every `checkpoint_every` steps,
    and each segment is recomputed, then stepped back with the vector–Jacobian product of one
    step, which is generated C++ from `jax.vjp` of the model's step (`_codegen`). The results
    equal `jax.grad` of the `lax.scan` loop to rounding. `jax.jvp`/`jax.jacfwd` run the tangents
    of the scan loop `tangent`. See `_adjoint.py` and docs/performance.md.

    **Arguments:**

    - `tangent`: the `ScanLoop` whose tangents forward mode uses. Default ``ScanLoop()``.
    - `checkpoint_every`: steps between stored states, ≥ 1. Default None: ⌈√steps⌉, for memory
      O(N·√steps) (one more forward evaluation of each step on the backward pass).

    **Example:** ``FusedCPU(derivative=FusedAdjoint(checkpoint_every=100))``.
    """

    tangent: ScanLoop = ScanLoop()
    checkpoint_every: int | None = eqx.field(
        default=None, static=True,
        converter=lambda x: None if x is None else as_int("FusedAdjoint.checkpoint_every", x, minimum=1))

    def __check_init__(self):
        if not isinstance(self.tangent, ScanLoop):
            raise TypeError(f"FusedAdjoint.tangent must be a ScanLoop, got {self.tangent!r}.")

    def segment(self, n_steps: int) -> int:
        """Steps between checkpoints for a run of `n_steps` steps."""
        if self.checkpoint_every is not None:
            return self.checkpoint_every
        return max(1, math.isqrt(max(n_steps - 1, 0)) + 1)


class FusedCPU(AbstractFusedLoop):
    """`ExpEuler`'s whole time loop in one fused, vectorised, multi-threaded C++ kernel on the
    CPU (an XLA FFI call built once per machine with the system C++ compiler; see
    docs/performance.md): same results as `ScanLoop` to rounding, several times faster for
    populations. It runs where the stimulus can be tabulated (a constant, a population-wide
    waveform, or a per-neuron one of at most 2²⁵ steps × neurons) and a compiler was found.

    **Arguments:**

    - `derivative`: how derivatives are taken. `FusedAdjoint` (default): reverse mode by the
      kernel's own discrete adjoint, forward mode through a `ScanLoop`'s tangents. A `ScanLoop`:
      both modes are that loop's (e.g. ``ScanLoop(checkpoint=True)``).

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.01, backend=FusedCPU())`` (raises
    `ValueError`, saying why, where the kernel cannot run).
    """

    derivative: "ScanLoop | FusedAdjoint" = FusedAdjoint()

    def __check_init__(self):
        if not isinstance(self.derivative, (ScanLoop, FusedAdjoint)):
            raise TypeError(f"FusedCPU.derivative must be a FusedAdjoint or a ScanLoop, got "
                            f"{self.derivative!r}.")

    def kernel_unavailable_reason(self, prepared: Prepared) -> str | None:
        p = prepared.problem
        return _fused.unavailable_reason(prepared.stimulus, p.shape, p.n_steps, p.dtype)

    def fused_arrays(self, params, stimulus, y0: HHState, stepper, problem: Problem, states: str):
        return _fused.fused_arrays(params, stimulus, y0, problem=problem, staggered=stepper.staggered,
                                   states=states)


def _block(x):
    if x is None:
        return None
    x = as_int("PallasGPU.block", x, minimum=1)
    if x & (x - 1):
        raise ValueError(f"PallasGPU.block must be a power of 2 (neurons per program), got {x}.")
    return x


class PallasGPU(AbstractFusedLoop):
    """`ExpEuler`'s whole time loop in one Pallas (Triton) kernel on a GPU: a grid of programs,
    each taking a block of neurons (one lane each) through every step with the state in
    registers (see `_pallas.py` and docs/performance.md, section GPU). Same results as
    `ScanLoop` to rounding; the stimulus is tabulated as for `FusedCPU`.

    **Arguments:**

    - `derivative`: the `ScanLoop` whose derivatives are the kernel's (`jax.grad`, `jax.jvp`).
      Default ``ScanLoop()``.
    - `block`: neurons per program, a power of 2. Default None: 128, or fewer for a smaller
      population.
    - `interpret`: run the kernel in the Pallas interpreter on any device (slow; for tests on
      a machine without a GPU). Default False.

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.01, backend=PallasGPU())`` (on a
    GPU; elsewhere it raises `ValueError`, saying why).
    """

    derivative: ScanLoop = ScanLoop()
    block: int | None = eqx.field(default=None, static=True, converter=_block)
    interpret: bool = eqx.field(default=False, static=True,
                                converter=lambda x: as_bool("PallasGPU.interpret", x))

    def __check_init__(self):
        if not isinstance(self.derivative, ScanLoop):
            raise TypeError(f"PallasGPU.derivative must be a ScanLoop, got {self.derivative!r}.")

    def kernel_unavailable_reason(self, prepared: Prepared) -> str | None:
        return _pallas.pallas_unavailable_reason(prepared.stimulus, prepared.problem,
                                                 prepared.problem.dtype, interpret=self.interpret)

    def fused_arrays(self, params, stimulus, y0: HHState, stepper, problem: Problem, states: str):
        return _pallas.pallas_arrays(params, stimulus, y0, config=problem, staggered=stepper.staggered,
                                     states=states, interpret=self.interpret, block=self.block)


def _check_type(name, value, cls, example, optional=False):
    if (optional and value is None) or isinstance(value, cls):
        return
    raise TypeError(f"DiffraxAdapter.{name} must be a {cls.__module__.split('.')[0]}.{cls.__name__} "
                    f"(e.g. {example}){' or None' if optional else ''}, got {value!r}.")


class DiffraxAdapter(AbstractBackend):
    """Any Diffrax solver run by `diffrax.diffeqsolve` on the same vector field, traces saved on
    the `dt` grid, spikes located on the solver's dense output (differentiably).

    **Arguments:**

    - `solver`: a `diffrax.AbstractSolver`, e.g. ``diffrax.Tsit5()``, ``diffrax.Kvaerno5()``.
    - `stepsize_controller`: default ``diffrax.ConstantStepSize()`` (steps of `dt`);
      ``diffrax.PIDController(rtol=..., atol=...)`` for adaptive steps. The stimulus'
      `jump_times(t0, t1)` are added as ``jump_ts`` automatically, so no pulse or step edge is
      stepped over.
    - `adjoint`: default ``diffrax.RecursiveCheckpointAdjoint(checkpoints=max_steps)``
      (gradients of traces *and* spike times; one checkpoint per step, because with the
      installed jax 0.10 / equinox 0.13 the recomputing variant, ``checkpoints < steps taken``,
      returns wrong gradients — see docs/accuracy.md); ``diffrax.BacksolveAdjoint()`` gives
      gradients of the recorded traces only, in O(1) memory.
    - `max_steps`: step budget, ≥ 1. Default (None): ``n_steps + 1`` for a constant step, else
      ``max(16384, 250·duration/1 ms)``.
    - `population`: `BatchedODE()` (default; one ODE over the whole population, one step-size
      sequence; on CPU within timing noise of `PerNeuronODE()`, see docs/accuracy.md) or
      `PerNeuronODE()` (one ODE per neuron under `jax.vmap`, each with its own step size).

    ``simulate(..., stepper=diffrax.Tsit5())`` is shorthand for
    ``backend=DiffraxAdapter(diffrax.Tsit5())``.

    **Example:**

    ```python
    backend = hh_jax.DiffraxAdapter(diffrax.Tsit5(),
                                    stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8))
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=100.0, dt=0.01, backend=backend)
    ```
    """

    solver: diffrax.AbstractSolver
    stepsize_controller: diffrax.AbstractStepSizeController = diffrax.ConstantStepSize()
    adjoint: diffrax.AbstractAdjoint | None = None
    max_steps: int | None = eqx.field(
        default=None, static=True,
        converter=lambda x: None if x is None else as_int("DiffraxAdapter.max_steps", x, minimum=1))
    population: AbstractPopulationMode = eqx.field(default=BatchedODE(), static=True)

    def __check_init__(self):
        _check_type("solver", self.solver, diffrax.AbstractSolver, "diffrax.Tsit5()")
        _check_type("stepsize_controller", self.stepsize_controller, diffrax.AbstractStepSizeController,
                    "diffrax.PIDController(rtol=1e-6, atol=1e-6)")
        _check_type("adjoint", self.adjoint, diffrax.AbstractAdjoint, "diffrax.BacksolveAdjoint()", optional=True)
        check_population(self.population)

    def unavailable_reason(self, stepper, prepared: Prepared) -> str | None:
        if stepper is None or stepper == self.solver:
            return None
        return (f"it runs its own solver {self.solver!r}; stepper={stepper!r} contradicts it "
                "(give the solver once, in the adapter)")

    def prepare(self, stepper, prepared: Prepared) -> "DiffraxAdapter":
        problem = prepared.problem
        problem.memory(saved_states=4)
        controller, adjoint, max_steps = resolve_options(
            prepared.stimulus, self.stepsize_controller, self.adjoint, self.max_steps, self.population,
            problem, t0=prepared.t0_known, dt=prepared.grid["dt"])
        return DiffraxAdapter(self.solver, stepsize_controller=controller, adjoint=adjoint,
                              max_steps=max_steps, population=self.population)

    def run(self, params, stimulus, y0: HHState, stepper, problem: Problem) -> Loop:
        ts, ys, final, count, times, ok = run_diffrax(
            params, stimulus, y0, self.solver, self.stepsize_controller, self.adjoint, self.max_steps,
            self.population, problem)
        traces = observe_samples(params, stimulus, ys, ts, problem.record, problem.shape)
        return Loop(final, count, times, traces, ts, ok)


def fused_adjoint_by_default() -> bool:
    """Whether `simulate`'s automatic choice for `ExpEuler` runs the fused CPU kernel (and so its
    adjoint in reverse mode) here: on the CPU, with the kernel built (stimuli it cannot tabulate
    aside)."""
    return jax.default_backend() == "cpu" and _fused._library()[1] is None


def uses_fused_adjoint(stepper, backend) -> bool:
    """Whether `simulate(..., stepper=stepper, backend=backend)` differentiates in reverse mode
    by the fused kernel's adjoint (`backend` None: the automatic choice)."""
    if backend is None:
        return isinstance(stepper, ExpEuler) and fused_adjoint_by_default()
    return isinstance(backend, FusedCPU) and isinstance(backend.derivative, FusedAdjoint)


def choose(stepper, prepared: Prepared) -> AbstractBackend:
    """The backend `simulate` runs when none is passed: a Diffrax solver as `stepper` runs in
    ``DiffraxAdapter(stepper)``; `ExpEuler` runs in `PallasGPU()` on a GPU and in `FusedCPU()` on the
    CPU where the kernel applies; every other case in `ScanLoop()`."""
    if isinstance(stepper, diffrax.AbstractSolver):
        return DiffraxAdapter(stepper)
    for fused in (PallasGPU(), FusedCPU()):  # each says None only on its own platform
        if fused.unavailable_reason(stepper, prepared) is None:
            return fused
    return ScanLoop()
