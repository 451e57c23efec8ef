"""Reverse mode through the fused CPU kernel: its discrete adjoint, behind a linear primitive.

`FusedCPU(derivative=FusedAdjoint())` differentiates the kernel's loop in both modes:

- **Forward mode** (`jax.jvp`, `jax.jacfwd`): the tangents are those of the `lax.scan` loop
  ``FusedAdjoint.tangent`` (same mathematics).
- **Reverse mode** (`jax.grad`, `jax.vjp`): the exact derivative of the kernel's discrete
  exponential-Euler map, run backwards by the kernel itself (`_fused.run_adjoint`), with
  checkpoints every K steps (stored by the forward call, each segment recomputed backwards:
  memory O(N·T/K + K)).

How both live in one custom JVP: the JVP rule returns the kernel's primal and, as tangent, a
*linear primitive* of the input tangents (as Lineax's `linear_solve_p`, with Equinox's
``filter_primitive_*`` helpers, the one documented use of ``equinox.internal`` in hh_jax): its
evaluation is the scan's JVP (forward mode), its transpose is the kernel's adjoint (reverse
mode: JAX transposes the linearised program, and so calls the adjoint), its JVP is itself (or
the scan's where the residuals are perturbed: second derivatives), its batching is by `vmap` of
these rules (``equinox.internal.create_vprim``). The per-step derivative in the C++ is generated
from `jax.vjp` of `_model`'s step (`_codegen`), so no derivative is written by hand.
"""

import dataclasses
import math

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jax.interpreters import ad

from . import _fused
from ._spikes import Crossings
from ._vector_field import HHState


def _scan_arrays(static):
    """``(params, stimulus, y0, t0, dt) → ((V, m, h, n) final, brackets, state traces)`` by the
    scan loop ``FusedAdjoint.tangent`` (the kernel's mathematics; what its derivatives are of)."""
    backend, stepper, problem, states, _ = static
    scan_problem = dataclasses.replace(problem, record=tuple(states), throw=False)

    def scan_arrays(params, stimulus, y0, t0, dt):
        y, _, crossings, traces, _ = backend.derivative.tangent.arrays(
            params, stimulus, y0, stepper, dataclasses.replace(scan_problem, t0=t0, dt=dt))
        return (y.V, y.m, y.h, y.n), crossings.bracket, traces

    return scan_arrays


def _kernel_layout(final, traces, problem, states: str, dtype):
    """A (co)tangent of the final state (V, m, h, n) and of the state traces ``{v: [samples,
    *shape]}`` in the kernel's layout: ``[1, 4, N]`` and ``[1, n_rec, len(states), N]``."""
    N = math.prod(problem.shape)
    yf = jnp.stack([jnp.reshape(x, (N,)) for x in final])[None].astype(dtype)
    n_rec = problem.n_steps // problem.record_every + 1 if states else 0
    if not states:
        return yf, jnp.zeros((1, n_rec, 0, N), dtype)
    rec = jnp.stack([traces[v].reshape(n_rec, N) for v in states], axis=1)[None]
    return yf, rec.astype(dtype)


def _scan_tangents(residuals, tangents, static):
    """The tangents of (final state, brackets, state traces) by the scan loop's JVP."""
    primals, _, _ = residuals
    primal_out, t_out = eqx.filter_jvp(_scan_arrays(static), primals, tangents)
    # materialise symbolic zeros: a primitive's outputs are arrays
    return jtu.tree_map(lambda p, t: jnp.zeros_like(p) if t is None else t, primal_out, t_out,
                        is_leaf=lambda x: x is None)


def _abstract_eval(residuals, tangents, static):
    # The shapes of (final state, brackets, traces), from the problem (not by tracing the scan's
    # JVP: that would cost ~0.3 s of every first call)
    (_, _, y0, _, _), _, _ = residuals
    _, _, problem, states, _ = static
    shape, dtype = problem.shape, y0.V.dtype
    N = math.prod(shape)
    n_rec = problem.n_steps // problem.record_every + 1
    arr = lambda s: jax.core.ShapedArray(s, dtype)
    return (tuple(arr(shape) for _ in range(4)),
            arr((problem.max_spikes, N, problem.spike_interpolation.bracket_size)),
            {v: arr((n_rec,) + shape) for v in states})


def _jvp(primals, tangents):
    residuals, lin, static = primals
    t_residuals, t_lin, _ = tangents
    out = eqxi.filter_primitive_bind(_tangent_p, residuals, lin, static)
    if all(t is None for t in jtu.tree_leaves(t_residuals, is_leaf=lambda x: x is None)):
        # linear in `lin`: the tangent is the same primitive (transposable again)
        t_lin = jtu.tree_map(lambda p, t: jnp.zeros_like(p) if t is None else t, lin, t_lin,
                             is_leaf=lambda x: x is None)
        return out, eqxi.filter_primitive_bind(_tangent_p, residuals, t_lin, static)
    # perturbed residuals (a second derivative): differentiate the scan's JVP itself
    _, t_out = eqx.filter_jvp(lambda r, t: _scan_tangents(r, t, static), (residuals, lin),
                              (t_residuals, t_lin))
    return out, t_out


def _transpose(inputs, cts_out):
    residuals, lin, static = inputs
    primals, ck, steps = residuals
    g = _cotangents(primals, ck, steps, cts_out, static=static)
    # a cotangent for every linear input (the tangents' leaves), None elsewhere
    # (UndefinedPrimal is a pytree without leaves: a leaf here)
    is_leaf = lambda x: x is None or ad.is_undefined_primal(x)
    lin_leaves, treedef = jtu.tree_flatten(lin, is_leaf=is_leaf)
    g_leaves = jtu.tree_leaves(g, is_leaf=lambda x: x is None)
    g_lin = jtu.tree_unflatten(treedef, [None if t is None else c for t, c in zip(lin_leaves, g_leaves, strict=True)])
    none = lambda tree: jtu.tree_map(lambda _: None, tree)
    return none(residuals), g_lin, none(static)


@eqx.filter_custom_jvp
def _cotangents(primals, ck, steps, cts_out, *, static):
    """The cotangents of ``(params, stimulus, y0, t0, dt)`` from those of (final state,
    brackets, state traces): the kernel's adjoint. Its own JVP (forward over reverse: Hessian-
    vector products) is that of the scan loop's VJP."""
    (params, stimulus, y0, t0, dt) = primals
    _, stepper, problem, states, ck_every = static
    full = dataclasses.replace(problem, t0=t0, dt=dt)
    raw, pull = eqx.filter_vjp(
        lambda p, s, y, a, b: _fused.raw_inputs(p, s, y, a, b, problem=full),
        params, stimulus, y0, t0, dt)
    ct_final, ct_brackets, ct_traces = cts_out
    dtype = raw.y0.dtype
    ct_yf, ct_rec = _kernel_layout(ct_final, ct_traces, problem, states, dtype)
    g_raw = _fused.run_adjoint(raw, ck, steps, ct_yf, ct_rec, ct_brackets[None].astype(dtype), problem=full,
                               staggered=stepper.staggered, states=states, ck_every=ck_every)
    return pull(g_raw)


@_cotangents.def_jvp
def _cotangents_jvp(primals, tangents, *, static):
    prim, _, _, cts_out = primals
    t_prim, _, _, t_cts = tangents

    def scan_vjp(prim, cts_out):
        _, pull = eqx.filter_vjp(_scan_arrays(static), *prim)
        return pull(cts_out)

    return eqx.filter_jvp(scan_vjp, (prim, cts_out), (t_prim, t_cts))


@eqx.filter_custom_jvp
def _checkpointed(primals, *, static):
    """The kernel's outputs (`_fused.run_kernel`) with checkpoints. Its JVP: the scan loop's
    tangents for the outputs, none for the checkpoints (read by the adjoint only, whose own JVP
    does not use them): so a derivative of the JVP rule (second order) is defined."""
    params, stimulus, y0, t0, dt = primals
    _, stepper, problem, states, ck_every = static
    full = dataclasses.replace(problem, t0=t0, dt=dt)
    raw = _fused.raw_inputs(params, stimulus, y0, t0, dt, problem=full)
    return _fused.run_kernel(raw, problem=full, staggered=stepper.staggered, states=states,
                             ck_every=ck_every)


@_checkpointed.def_jvp
def _checkpointed_jvp(primals, tangents, *, static):
    (prim,), (t_prim,) = primals, tangents
    out = _checkpointed(prim, static=static)
    _, (t_final, t_brackets, t_traces) = eqx.filter_jvp(_scan_arrays(static), prim, t_prim)
    t_yf, t_rec = _kernel_layout(t_final, t_traces, static[2], static[3], out[0].dtype)
    zeros = lambda x: jnp.zeros_like(x) if jnp.issubdtype(x.dtype, jnp.inexact) else None
    tangent = (t_yf, None, t_rec, None, t_brackets[None], zeros(out[5]))
    return out, tangent


_tangent_p = eqxi.create_vprim(
    "hh_jax_fused_tangent",
    eqxi.filter_primitive_def(_scan_tangents),
    eqxi.filter_primitive_def(_abstract_eval),
    eqxi.filter_primitive_jvp(_jvp),
    eqxi.filter_primitive_transpose(materialise_zeros=True)(_transpose),
)


def fused_jvp(primals, tangents, *, backend, stepper, problem, states: str, ck_every: int):
    """The JVP rule of the fused core with the adjoint: the kernel's primal (checkpoints stored)
    and the linear primitive's tangent. `primals`/`tangents`: ``(params, stimulus, y0, t0, dt)``."""
    params, stimulus, y0, t0, dt = primals
    full = dataclasses.replace(problem, t0=t0, dt=dt)
    static = (backend, stepper, problem, states, ck_every)
    out = _checkpointed(primals, static=static)
    final, count, crossings, traces = _fused.unpack(out, problem=full, states=states)
    t_final, t_brackets, t_traces = eqxi.filter_primitive_bind(
        _tangent_p, (primals, out[5], out[3]), tangents, static)
    return ((final, count, crossings, traces),
            (HHState(*t_final), None, Crossings(None, t_brackets), t_traces))
