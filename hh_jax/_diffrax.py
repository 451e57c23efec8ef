"""The Diffrax mechanics of the `DiffraxAdapter` backend (`_backends.py`): any
`diffrax.AbstractSolver` on the same vector field.

The solver is wrapped in `_SpikeRecorder`, a transparent `diffrax.AbstractWrappedSolver` that,
after every step, looks for upward crossings of ``V_th`` between the step's ends and locates
each on the solver's dense interpolation (:func:`hh_jax._spikes.dense_crossing`). The spike
buffer lives in the solver state, which Diffrax keeps only for accepted steps, so every
crossing is recorded once, the solve never stops, and the spike times are differentiable
(through `RecursiveCheckpointAdjoint`).

Populations are solved either as one batched ODE (state arrays of the population shape, one
step size for all) or as independent ODEs under `jax.vmap` (a step size per neuron).
"""

import math
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._prepare import Problem
from ._spikes import dense_crossing, record_crossings
from ._vector_field import HHState, vector_field

class AbstractPopulationMode(eqx.Module):
    """How `DiffraxAdapter` solves a population (its `population` field): `BatchedODE()` or
    `PerNeuronODE()`."""

    per_neuron: eqx.AbstractClassVar[bool]
    """Whether each neuron is solved as its own ODE (under `jax.vmap`, its own step size)."""


class BatchedODE(AbstractPopulationMode):
    """One ODE over the whole population (state arrays of the population shape): one step-size
    sequence, so the traces share one time grid and the cost does not depend on the slowest
    neuron's rejections (the default; on CPU within timing noise of `PerNeuronODE`).

    **Example:** ``hh_jax.DiffraxAdapter(diffrax.Tsit5(), population=hh_jax.BatchedODE())``.
    """

    per_neuron: ClassVar[bool] = False


class PerNeuronODE(AbstractPopulationMode):
    """One ODE per neuron under `jax.vmap`, each with its own step size (the stimulus' arrays
    must be scalars or per-neuron).

    **Example:** ``hh_jax.DiffraxAdapter(diffrax.Tsit5(), population=hh_jax.PerNeuronODE())``.
    """

    per_neuron: ClassVar[bool] = True


def check_population(value) -> AbstractPopulationMode:
    """`value` if it is an `AbstractPopulationMode`; a `TypeError` naming
    ``DiffraxAdapter.population`` otherwise (strings too: the CLI is the only place for names)."""
    if not isinstance(value, AbstractPopulationMode):
        raise TypeError("DiffraxAdapter.population must be hh_jax.BatchedODE() or hh_jax.PerNeuronODE(), "
                        f"got {value!r}.")
    return value


class _SpikeRecorder(diffrax.AbstractWrappedSolver):
    """Wraps a Diffrax solver; records threshold crossings in its solver state."""

    solver: diffrax.AbstractSolver
    max_spikes: int = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        if not isinstance(y0, HHState):  # e.g. BacksolveAdjoint's augmented backward solve
            return self.solver.init(terms, t0, t1, y0, args)
        N = math.prod(self.shape)
        count = jnp.zeros(self.shape, jnp.int32)
        # Zero-filled (an inf here poisons adjoint cotangents); unused rows become +inf after.
        buf = jnp.zeros((self.max_spikes, N), y0.V.dtype)
        return self.solver.init(terms, t0, t1, y0, args), count, buf

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        if not isinstance(y0, HHState):
            return self.solver.step(terms, t0, t1, y0, args, solver_state, made_jump)
        inner, count, buf = solver_state
        y1, y_error, dense_info, inner, result = self.solver.step(
            terms, t0, t1, y0, args, inner, made_jump
        )
        params = args[0]
        V_th = jnp.broadcast_to(params.V_th, self.shape).astype(y1.V.dtype)
        crossed = (y0.V < V_th) & (y1.V >= V_th)
        if self.max_spikes > 0:
            interp_V = self._interp_V(t0, t1, dense_info)
            locate = lambda: dense_crossing(interp_V, t0, t1, y0.V, y1.V, V_th)
            t_cross = jax.lax.cond(
                jnp.any(crossed), locate, lambda: jnp.zeros(self.shape, y1.V.dtype)
            )
        else:
            t_cross = jnp.zeros(self.shape, y1.V.dtype)
        buf, count = record_crossings(buf, count, crossed, t_cross)
        return y1, y_error, dense_info, (inner, count, buf), result

    def _interp_V(self, t0, t1, dense_info):
        cls = self.solver.interpolation_cls
        pop = len(self.shape)

        def one(s, info):
            return cls(t0=t0, t1=t1, **info).evaluate(t0 + s * (t1 - t0)).V

        if pop == 0:
            return lambda s: one(s, dense_info)
        flat = jax.tree_util.tree_map(
            lambda x: x.reshape(x.shape[: x.ndim - pop] + (-1,)), dense_info
        )
        return lambda s: jax.vmap(one, in_axes=(0, -1))(s.reshape(-1), flat).reshape(self.shape)

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)

    @property
    def root_finder(self):
        # Only reached for implicit solvers, whose tolerances `_with_tolerances` has set.
        return self.solver.root_finder


_USE_STEPSIZE_TOL = diffrax.with_stepsize_controller_tols(optx.Chord)().rtol
"""Diffrax's marker for "take this tolerance from the step-size controller", obtained through its
public API (a root finder made by `diffrax.with_stepsize_controller_tols` holds it in `rtol`,
`atol` and `norm`); the default root finder of Diffrax's implicit solvers holds it too."""


def _with_tolerances(solver, controller):
    """Give an implicit solver's root finder the controller's rtol/atol/norm, as
    `diffrax.diffeqsolve` does for an unwrapped implicit solver (it cannot see through
    `_SpikeRecorder`, so this is done before wrapping)."""
    if not isinstance(solver, diffrax.AbstractImplicitSolver):
        return solver
    attrs = [a for a in ("rtol", "atol", "norm") if getattr(solver.root_finder, a) is _USE_STEPSIZE_TOL]
    if not attrs:
        return solver
    if not isinstance(controller, diffrax.AbstractAdaptiveStepSizeController):
        raise ValueError(
            "an implicit Diffrax solver with a constant step needs explicit root-finder "
            "tolerances; pass DiffraxAdapter(solver, stepsize_controller=diffrax.PIDController(rtol=..., atol=...))."
        )
    return eqx.tree_at(
        lambda s: tuple(getattr(s.root_finder, a) for a in attrs),
        solver,
        tuple(getattr(controller, a) for a in attrs),
    )


def with_jump_times(controller, jumps: np.ndarray):
    """`controller` made to step onto the stimulus' discontinuities `jumps` (ms), if adaptive."""
    if jumps.size == 0 or not isinstance(controller, diffrax.AbstractAdaptiveStepSizeController):
        return controller
    if isinstance(controller, diffrax.ClipStepSizeController):
        if controller.jump_ts is not None:
            jumps = np.union1d(np.asarray(controller.jump_ts), jumps)
        return diffrax.ClipStepSizeController(
            controller.controller,
            step_ts=controller.step_ts,
            jump_ts=jumps,
            store_rejected_steps=controller.store_rejected_steps,
        )
    return diffrax.ClipStepSizeController(controller, jump_ts=jumps)


def _solve(params, stimulus, y0, solver, controller, adjoint, max_steps, config, shape, ts, dtype):
    term = diffrax.ODETerm(vector_field)
    t0 = jnp.asarray(config.t0, dtype)
    t1 = jnp.asarray(config.t0 + config.n_steps * config.dt, dtype)
    # The final state is the last entry of `ts` (which ends at t1): SaveAt(t1=True) on top of a
    # save at t1 makes BacksolveAdjoint's gradients NaN (diffrax 0.7.2).
    saveat = diffrax.SaveAt(ts=ts, solver_state=True)
    sol = diffrax.diffeqsolve(
        term,
        _SpikeRecorder(_with_tolerances(solver, controller), config.max_spikes, shape),
        t0,
        t1,
        jnp.asarray(config.dt, dtype),
        y0,
        args=(params, stimulus),
        saveat=saveat,
        stepsize_controller=controller,
        adjoint=adjoint,
        max_steps=max_steps,
        throw=config.throw,
    )
    _, count, buf = sol.solver_state
    ok = sol.result == diffrax.RESULTS.successful
    return sol.ys, count, buf, ok


def _flatten_stimulus(stimulus, shape):
    """The stimulus with its population-shaped leaves flattened to ``[N]``, and the matching
    `jax.vmap` axes (0 for those leaves, None for the shared ones)."""
    N = math.prod(shape)
    per_neuron = lambda x: eqx.is_array(x) and x.shape == shape
    flat = jax.tree_util.tree_map(lambda x: x.reshape(N) if per_neuron(x) else x, stimulus)
    axes = jax.tree_util.tree_map(lambda x: 0 if per_neuron(x) else None, stimulus)
    return flat, axes


def run_diffrax(params, stimulus, y0: HHState, solver, controller, adjoint, max_steps: int,
                population: AbstractPopulationMode, config: Problem):
    """Solve `config` (a `Problem`) with Diffrax (inside the caller's jit).

    **Returns:** ``(ts, traces, final, count, spike_times, ok)``: the sample times (ms), the
    states stacked over them, the final `HHState`, spike counts ``[*shape]``, spike times
    ``[S, *shape]`` (ms, +inf padded), and whether the solve succeeded (bool scalar)."""
    shape = config.shape
    dtype = y0.V.dtype  # the working dtype (simulate cast y0 to it)
    y0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).astype(dtype), y0)
    params = jax.tree_util.tree_map(lambda x: x.astype(dtype), params)
    n_samples = config.n_steps // config.record_every
    ts = config.t0 + config.dt * config.record_every * jnp.arange(n_samples + 1, dtype=dtype)
    t1 = config.t0 + config.n_steps * config.dt
    save_ts = ts if n_samples * config.record_every == config.n_steps else jnp.append(ts, jnp.asarray(t1, dtype))
    save_ts = save_ts.at[-1].set(t1)
    if population.per_neuron and shape != ():
        N = math.prod(shape)
        flat = lambda x: jnp.broadcast_to(x, shape).reshape(N)
        p_flat = jax.tree_util.tree_map(flat, params)
        y_flat = jax.tree_util.tree_map(lambda x: x.reshape(N), y0)
        s_flat, axes = _flatten_stimulus(stimulus, shape)

        def one(p, s, y):
            return _solve(p, s, y, solver, controller, adjoint, max_steps, config, (), save_ts, dtype)

        ys, count, buf, ok = jax.vmap(one, in_axes=(0, axes, 0))(p_flat, s_flat, y_flat)
        unflat = lambda x: jnp.moveaxis(x, 0, -1).reshape(x.shape[1:] + shape)
        ys = jax.tree_util.tree_map(unflat, ys)
        count = count.reshape(shape)
        buf = jnp.moveaxis(buf[:, :, 0], 0, -1)  # [S, N]
        ok = jnp.all(ok)
    else:
        ys, count, buf, ok = _solve(params, stimulus, y0, solver, controller, adjoint, max_steps, config,
                                    shape, save_ts, dtype)
    rows = jnp.arange(config.max_spikes, dtype=count.dtype).reshape((-1,) + (1,) * len(shape))
    buf = buf.reshape((config.max_spikes,) + shape)
    buf = jnp.where(rows < count, buf, jnp.inf)
    traces = jax.tree_util.tree_map(lambda x: x[: n_samples + 1], ys)
    final = jax.tree_util.tree_map(lambda x: x[-1], ys)
    return ts, traces, final, count, buf, ok


def check_vmap_stimulus(stimulus, shape, t0, dtype) -> None:
    """`ValueError` if `DiffraxAdapter(population=PerNeuronODE())` cannot split `stimulus` neuron by neuron."""
    if shape == ():
        return
    N = math.prod(shape)
    s_flat, axes = _flatten_stimulus(stimulus, shape)
    out = jax.eval_shape(
        jax.vmap(lambda s: s(jnp.asarray(t0, dtype)), in_axes=(axes,), axis_size=N), s_flat
    )
    if out.shape not in ((N,),):
        raise ValueError(
            "population=PerNeuronODE() needs a stimulus whose arrays are scalars or per-neuron "
            f"(shape {shape}); this one gives shape {out.shape[1:]} per neuron. "
            "Use DiffraxAdapter(population=hh_jax.BatchedODE())."
        )


def resolve_options(stimulus, controller, adjoint, max_steps, population, problem: Problem, *,
                    t0: float | None, dt: float):
    """The Diffrax options of a run filled in: ``(controller, adjoint, max_steps)`` with the
    stimulus' jump times given to an adaptive `controller`, the default `adjoint` and
    `max_steps` (see `DiffraxAdapter`).

    `dt` (ms) is a float; `t0` (ms) a float, or None where it is traced (then every jump time of
    the stimulus is passed on)."""
    n_steps = problem.n_steps
    adaptive = isinstance(controller, diffrax.AbstractAdaptiveStepSizeController)
    if max_steps is None:
        max_steps = max(16384, 250 * math.ceil(n_steps * dt)) if adaptive else n_steps + 1
    if adjoint is None:
        adjoint = diffrax.RecursiveCheckpointAdjoint(checkpoints=int(max_steps))
    if t0 is not None:
        t1 = t0 + n_steps * dt
        jumps = np.asarray(stimulus.jump_times(t0, t1), float)
        jumps = jumps[(jumps > t0) & (jumps < t1)]
    else:  # t0 traced: every jump (the run's window is not known in Python)
        try:
            jumps = np.asarray(stimulus.jump_times(-math.inf, math.inf), float)
        except ValueError as e:
            raise ValueError(f"stimulus: {e} With a Diffrax solver, pass t0 as a number (not a "
                             "traced value) for such a stimulus.") from None
    controller = with_jump_times(controller, jumps)
    if population.per_neuron:
        check_vmap_stimulus(stimulus, problem.shape, 0.0 if t0 is None else t0, problem.dtype)
    return controller, adjoint, int(max_steps)
