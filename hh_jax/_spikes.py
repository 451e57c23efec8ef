"""Spike times: threshold crossings located within a step, exactly and differentiably.

A spike is an upward crossing of ``V_th`` between the two ends of an (accepted) step. Its time
is the root of ``p(s) = V_th`` for an interpolant ``p`` of V over the step (``s ∈ [0, 1]``):

- `LinearSpikes`: the chord through the step's end values (the scan steppers' old rule; its
  error ~ dt²·|V''| is ~1e-4 ms at dt = 0.01 ms, larger than RK4's own error).
- `HermiteSpikes`: the cubic Hermite interpolant of the end values and end slopes (dV/dt from
  the vector field at both ends), error ~ dt⁴: the spike time is then limited by the scheme.
- Diffrax solvers: the solver's own dense interpolation (:func:`dense_crossing`).

The root is found by a bracketed Newton iteration with the gradient stopped, then one Newton
correction is applied *with* gradients, ``t* = t̃ − (p(t̃) − V_th)/p'(t̃)``. At the root this
has exactly the implicit-function-theorem derivative ``dt*/dθ = −(∂V/∂θ)/(dV/dt)``.

The fixed-step loops (the `lax.scan` loop and the fused kernel) do not locate crossings: they
only record, per crossing, its step and the bracket (`Crossings`), and :func:`refine` locates
all of them after the loop, once, for every backend. (Diffrax solvers locate theirs inside the
solve, on the dense output of the step, which is gone afterwards.)
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, Float, Int

class AbstractSpikeInterpolation(eqx.Module):
    """How a fixed-step loop locates a spike within the step of its crossing
    (``simulate(..., spike_interpolation=...)``): what the loop records per crossing and the
    interpolant whose root `refine` finds."""

    bracket_size: eqx.AbstractClassVar[int]
    """Values recorded per crossing (`Crossings.bracket`): 2 (V at both ends of the step), or 4
    (and dV/dt at both ends)."""

    @abc.abstractmethod
    def crossing(self, t_k, dt, bracket, V_th, *, iters: int):
        """Crossing time (ms) within ``[t_k, t_k + dt]`` from `bracket` (``[..., bracket_size]``)."""


class HermiteSpikes(AbstractSpikeInterpolation):
    """The cubic Hermite interpolant of V and dV/dt at both ends of the step (the default;
    spike-time error ~dt⁴, so the time is limited by the scheme).

    **Example:** ``hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=50.0, dt=0.01,
    spike_interpolation=hh_jax.HermiteSpikes())``.
    """

    bracket_size: ClassVar[int] = 4

    def crossing(self, t_k, dt, bracket, V_th, *, iters: int):
        b = bracket
        return hermite_crossing(t_k, dt, b[..., 0], b[..., 1], b[..., 2], b[..., 3], V_th, iters=iters)


class LinearSpikes(AbstractSpikeInterpolation):
    """The chord through V at both ends of the step (spike-time error ~dt²; records half the
    values of `HermiteSpikes` per crossing).

    **Example:** ``hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=50.0, dt=0.01,
    spike_interpolation=hh_jax.LinearSpikes())``.
    """

    bracket_size: ClassVar[int] = 2

    def crossing(self, t_k, dt, bracket, V_th, *, iters: int):
        return linear_crossing(t_k, dt, bracket[..., 0], bracket[..., 1], V_th)


def check_spike_interpolation(name: str, value) -> AbstractSpikeInterpolation:
    """`value` if it is an `AbstractSpikeInterpolation`; a `TypeError` naming `name` otherwise
    (strings too: the CLI is the only place for names)."""
    if not isinstance(value, AbstractSpikeInterpolation):
        raise TypeError(f"{name} must be hh_jax.HermiteSpikes() or hh_jax.LinearSpikes(), got {value!r}.")
    return value


def _bracketed_newton(fn, s0, iters: int):
    """Root of ``fn(s) → (value, slope)`` in [0, 1], vectorised; value(0) < 0 ≤ value(1)."""
    def body(_, carry):
        s, lo, hi = carry
        v, dv = fn(s)
        lo = jnp.where(v < 0, s, lo)
        hi = jnp.where(v < 0, hi, s)
        safe = jnp.where(dv > 0, dv, 1.0)
        s_newton = s - v / safe
        # Newton inside the bracket, its ends included: at convergence the step rounds to s
        # itself, which is an end (s became lo or hi above); a strict test then bisected away
        # from the root at every later iteration (halving the error only, 1e-6 after 20: the
        # time stayed right to ~1e-12 ms through the final correction, its gradient to ~1e-5).
        ok = (dv > 0) & (s_newton >= lo) & (s_newton <= hi)
        return jnp.where(ok, s_newton, 0.5 * (lo + hi)), lo, hi

    # a loop, not `iters` unrolled copies: a tenth of the program to compile (first call)
    carry = (s0, jnp.zeros_like(s0), jnp.ones_like(s0))
    return jax.lax.fori_loop(0, iters, body, carry)[0]


def _linear_guess(V0, V1, V_th):
    dV = jnp.where(V1 > V0, V1 - V0, 1.0)
    return jnp.clip((V_th - V0) / dV, 0.0, 1.0)


def linear_crossing(t0, dt, V0, V1, V_th):
    """Crossing time (ms) of the chord from ``(t0, V0)`` to ``(t0 + dt, V1)`` through `V_th`."""
    return t0 + dt * _linear_guess(V0, V1, V_th)


def _hermite(s, V0, V1, d0, d1):
    """Cubic Hermite on s ∈ [0, 1] with end values V0, V1 and end slopes d0, d1 (per unit s)."""
    s2 = s * s
    s3 = s2 * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    value = h00 * V0 + h10 * d0 + h01 * V1 + h11 * d1
    slope = (6 * s2 - 6 * s) * (V0 - V1) + (3 * s2 - 4 * s + 1) * d0 + (3 * s2 - 2 * s) * d1
    return value, slope


def hermite_crossing(t0, dt, V0, V1, dVdt0, dVdt1, V_th, *, iters: int = 20):
    """Crossing time (ms) of the cubic Hermite interpolant of V over one step, differentiable.

    **Arguments:**

    - `t0`: step start, ms (scalar, or one per crossing); `dt`: step, ms.
    - `V0`, `V1`: V at both ends, mV, population shape.
    - `dVdt0`, `dVdt1`: dV/dt at both ends, mV/ms (from the vector field).
    - `V_th`: threshold, mV. Where there is no crossing the result is meaningless (mask it).
    - `iters`: bracketed Newton iterations (bisection where Newton leaves the bracket). Default 20.

    **Returns:** crossing times, ms, population shape.

    **Example:** ``hermite_crossing(0.0, 0.1, 0.0, 1.0, 10.0, 10.0, 0.5)`` = 0.05.
    """
    d0, d1 = dt * dVdt0, dt * dVdt1
    sg = jax.lax.stop_gradient
    V0s, V1s, d0s, d1s = sg(V0), sg(V1), sg(d0), sg(d1)
    fn = lambda s: (lambda v, dv: (v - sg(V_th), dv))(*_hermite(s, V0s, V1s, d0s, d1s))
    s = sg(_bracketed_newton(fn, _linear_guess(V0s, V1s, sg(V_th)), iters))
    value, slope = _hermite(s, V0, V1, d0, d1)
    slope = sg(jnp.where(slope > 0, slope, 1.0))
    return t0 + dt * (s - (value - V_th) / slope)


def dense_crossing(interp_V, t0, t1, V0, V1, V_th, *, iters: int = 12):
    """Crossing time (ms) of V on a solver's dense interpolation over ``[t0, t1]``.

    **Arguments:**

    - `interp_V`: ``s ↦ V(t0 + s·(t1 − t0))`` for a population-shaped ``s`` (mV); must be
      differentiable in its closure (the dense-output coefficients).
    - `t0`, `t1`: step ends, ms (scalars).
    - `V0`, `V1`: V at the ends (for the initial guess), population shape.
    - `V_th`: threshold, mV.
    - `iters`: bracketed Newton iterations. Default 12.

    **Returns:** crossing times, ms, population shape (meaningless where there is none).

    **Example:** see `hh_jax._diffrax` (used inside the solver wrapper).
    """
    sg = jax.lax.stop_gradient

    def fn(s):
        v, dv = jax.jvp(interp_V, (s,), (jnp.ones_like(s),))
        return sg(v - V_th), sg(dv)

    s = sg(_bracketed_newton(fn, _linear_guess(sg(V0), sg(V1), sg(V_th)), iters))
    value, slope = jax.jvp(interp_V, (s,), (jnp.ones_like(s),))
    slope = sg(jnp.where(slope > 0, slope, 1.0))
    return t0 + (t1 - t0) * (s - (value - V_th) / slope)


class Crossings(eqx.Module):
    """What the refinement needs about each recorded upward crossing of ``V_th``: one row per
    spike slot (row ``j`` of a neuron: its ``j``-th crossing), ``N`` neurons (flattened).

    - `step`: int32 ``[S, N]``: the step ``k`` of the crossing, which lies in
      ``[t0 + k·dt, t0 + (k + 1)·dt]``; −1 in an empty row.
    - `bracket`: ``[S, N, interpolation.bracket_size]``: ``V0, V1`` (mV), V at the step's ends, then
      for `HermiteSpikes` ``dVdt0, dVdt1`` (mV/ms), dV/dt from the vector field with the current at
      ``t0 + k·dt`` and ``t0 + (k + 1)·dt``; zeros in an empty row (finite: no NaN gradient).

    Written by the loops (`record_brackets`, the fused kernel), turned into times by `refine`.
    """

    step: Int[Array, "S N"]
    bracket: Float[Array, "S N C"]


def empty_crossings(S: int, N: int, dtype, interpolation: AbstractSpikeInterpolation) -> Crossings:
    """A `Crossings` record with no crossing: steps −1, brackets 0."""
    return Crossings(jnp.full((S, N), -1, jnp.int32), jnp.zeros((S, N, interpolation.bracket_size), dtype))


def crossing_record_bytes(dtype, interpolation: AbstractSpikeInterpolation) -> int:
    """Bytes one neuron's spike slot takes in a `Crossings` record (the step index, int32, and
    the bracket values in `dtype`): 20 (float32, `HermiteSpikes`) to 36 (float64)."""
    return 4 + interpolation.bracket_size * np.dtype(dtype).itemsize


def record_brackets(crossings: Crossings, count, crossed, k, ends) -> Crossings:
    """Write the bracket `ends` of step `k` into row ``count`` where `crossed` (a loop's record).

    **Arguments:** `crossings`: the record so far; `count`: int ``[*pop]``, crossings before this
    step; `crossed`: bool ``[*pop]``; `k`: the step (int32 scalar); `ends`: ``(V0, V1)`` or
    ``(V0, V1, dVdt0, dVdt1)``, each broadcastable to ``[*pop]`` (`bracket_size` values).

    **Returns:** the updated `Crossings`. Rows beyond ``S`` are dropped (the counts stay exact).
    """
    S, N = crossings.step.shape
    if S == 0:
        return crossings
    shape = crossed.shape
    slot = jnp.where(crossed, count, S).reshape(-1)
    cols = jnp.arange(N)
    values = jnp.stack([jnp.broadcast_to(e, shape).reshape(-1) for e in ends], axis=-1)
    # (slot, column) pairs are distinct (one per column): `unique_indices` lets JAX differentiate
    # the write as a scatter of the tangent, instead of its general rule for a `set` that may
    # collide (a scatter of ids and a select over the whole [S, N, C] record, both ways).
    step = crossings.step.at[slot, cols].set(jnp.broadcast_to(k, (N,)).astype(jnp.int32), mode="drop",
                                             unique_indices=True)
    bracket = crossings.bracket.at[slot, cols].set(values.astype(crossings.bracket.dtype), mode="drop",
                                                   unique_indices=True)
    return Crossings(step, bracket)


def refine(crossings: Crossings, *, t0, dt, V_th, interpolation: AbstractSpikeInterpolation, iters: int = 20):
    """Spike times (ms) of every recorded crossing, located within its step, differentiably.

    One function for every fixed-step loop: ``t = t_k + dt·s`` with ``t_k = t0 + k·dt`` and
    ``s`` the root of the interpolant through the bracket (:func:`hermite_crossing` or
    :func:`linear_crossing`); gradients flow through `t0`, `dt`, `V_th` and the bracket values
    (the implicit-function-theorem derivative).

    **Arguments:**

    - `crossings`: the loop's `Crossings` (``[S, N]`` rows).
    - `t0`: the run's start, ms; `dt`: step, ms (0-d, the working dtype).
    - `V_th`: threshold, mV, broadcastable to ``[N]``.
    - `interpolation`: `HermiteSpikes()` or `LinearSpikes()`; must match the record.
    - `iters`: bracketed Newton iterations (Hermite). Default 20.

    **Returns:** ``[S, N]`` spike times, ms, +inf in empty rows.

    **Example:** ``refine(Crossings(jnp.array([[3]]), jnp.array([[[0.0, 1.0]]])), t0=0.0, dt=0.1,
    V_th=0.5, interpolation=LinearSpikes())`` = ``[[0.35]]``.
    """
    check_spike_interpolation("interpolation", interpolation)
    b = crossings.bracket
    if b.shape[-1] != interpolation.bracket_size:
        raise ValueError(f"a {interpolation!r} refinement needs {interpolation.bracket_size} bracket values "
                         f"per crossing, the record has {b.shape[-1]}.")
    k = crossings.step
    V_th = jnp.broadcast_to(jnp.asarray(V_th, b.dtype), k.shape[1:])

    def locate(k, b):
        t_k = t0 + jnp.maximum(k, 0).astype(b.dtype) * dt  # the loops' own t_k (same arithmetic)
        t = interpolation.crossing(t_k, dt, b, V_th, iters=iters)
        return jnp.where(k >= 0, t, jnp.inf).astype(b.dtype)

    # The rows past the most spikes any neuron fired are empty (the default buffer holds a 500 Hz
    # ceiling): in large records, blocks of rows are located only where they hold a crossing.
    S, N = k.shape
    rows = max(1, _BLOCK // max(N, 1))
    if isinstance(interpolation, LinearSpikes) or rows >= S:
        return locate(k, b)
    n_blocks = -(-S // rows)
    pad = n_blocks * rows - S
    kb = jnp.pad(k, ((0, pad), (0, 0)), constant_values=-1).reshape(n_blocks, rows, N)
    bb = jnp.pad(b, ((0, pad), (0, 0), (0, 0))).reshape(n_blocks, rows, N, b.shape[-1])
    empty = lambda k, b: jnp.full(k.shape, jnp.inf, b.dtype)
    t = jax.lax.map(lambda x: jax.lax.cond(jnp.any(x[0] >= 0), locate, empty, *x), (kb, bb))
    return t.reshape(n_blocks * rows, N)[:S]


_BLOCK = 2**14
"""`refine` locates Hermite crossings in blocks of about this many elements (whole rows)."""


def record_crossings(buf, count, crossed, t_cross):
    """Write `t_cross` into row ``count`` of `buf` (``[S, N]``) where `crossed`; bump counts
    (the Diffrax solvers, which locate their crossings inside the solve).

    **Arguments:** `buf`: ``[S, N]`` spike times (ms, +inf padded); `count`: int ``[*pop]``;
    `crossed`: bool ``[*pop]``; `t_cross`: ms ``[*pop]``.

    **Returns:** ``(buf, count)`` updated.
    """
    S, N = buf.shape
    if S > 0:
        slot = jnp.where(crossed, count, S).reshape(-1)
        buf = buf.at[slot, jnp.arange(N)].set(t_cross.reshape(-1).astype(buf.dtype), mode="drop")
    return buf, count + crossed.astype(count.dtype)
