"""Initial states: gates at steady state, BrainPy's random initializer, the exact resting state."""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._custom_types import PopArray, PopArrayLike, PRNGKeyArray
from ._params import HHParams
from ._vector_field import HHState, currents, gate_steady_states


def _shape_arg(shape) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}.") from None
    if any(s < 1 for s in shape):
        raise ValueError(f"shape must have positive sizes, got {shape}.")
    return shape


def steady_state_at(V: PopArrayLike = -65.0, *, shape: int | Sequence[int] | None = None) -> HHState:
    """A state at potential `V` with every gate at its steady state ``x∞(V)``.

    This is the BrainState tutorial's initial state (``V = −65`` mV) and hh_jax's default.

    **Arguments:**

    - `V`: membrane potential, mV, scalar or array. Default −65.0.
    - `shape`: population shape to broadcast to (int or tuple); default: the shape of `V`.

    **Returns:** an `HHState`.

    **Example:** ``steady_state_at(-65.0, shape=10)``.
    """
    V = jnp.asarray(V, dtype=jnp.result_type(float))
    if not isinstance(V, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(V))):
        raise ValueError(f"V must be finite, got {V}.")
    shape = _shape_arg(shape) if shape is not None else jnp.shape(V)
    V = jnp.broadcast_to(V, shape)
    m, h, n = gate_steady_states(V)
    return HHState(V=V, m=m, h=h, n=n)


def brainpy_initial_state(key: PRNGKeyArray, shape: int | Sequence[int] = ()) -> HHState:
    """BrainPy's ``brainpy.dyn.HH`` initializer: V ~ Uniform[−70, −60) mV, m 0.5, h 0.6, n 0.32.

    The PRNG key is explicit, so the draw is reproducible.

    **Arguments:**

    - `key`: a `jax.random` key.
    - `shape`: population shape (int or tuple). Default ``()`` (one neuron).

    **Returns:** an `HHState`.

    **Example:** ``brainpy_initial_state(jax.random.key(0), 2)``.
    """
    shape = _shape_arg(shape)
    V = jax.random.uniform(key, shape, minval=-70.0, maxval=-60.0)
    full = lambda v: jnp.full(shape, v, dtype=V.dtype)
    return HHState(V=V, m=full(0.5), h=full(0.6), n=full(0.32))


def _rest_residual(V, args):
    params, I = args
    m, h, n = gate_steady_states(V)
    y = HHState(V=V, m=m, h=h, n=n)
    return (I - currents(params, y).total) / params.C


def resting_state(
    params: HHParams,
    I: PopArrayLike = 0.0,
    *,
    V0: PopArrayLike = -65.0,
    rtol: float | None = None,
    atol: float | None = None,
) -> HHState:
    """The equilibrium of the HH model under a constant holding current.

    Solves ``I − I_ion(V, m∞(V), h∞(V), n∞(V)) = 0`` for V by Newton's method (Optimistix),
    neuron by neuron, and sets each gate to its steady state. Differentiable with respect to
    `params` and `I` through the implicit function theorem. For the currents where the model has
    several equilibria, the one nearest `V0` is found.

    **Arguments:**

    - `params`: `HHParams` (any population shape).
    - `I`: holding current density, µA/cm², broadcastable to the population. Default 0.0.
    - `V0`: initial guess, mV. Default −65.0.
    - `rtol`, `atol`: Newton tolerances, relative and absolute (mV). Defaults: ``100·eps`` and
      ``1e4·eps`` mV of the working precision (2e-12 mV in float64, 1e-3 mV in float32).

    **Returns:** an `HHState` at the equilibrium, population shape.

    **Example:** ``resting_state(HHParams.hh1952()).V`` ≈ −64.996 mV.
    """
    I = jnp.asarray(I, dtype=params.dtype)
    shape = tuple(np.broadcast_shapes(params.pop_shape, jnp.shape(I), jnp.shape(V0)))
    dtype = jnp.result_type(params.dtype, I.dtype)
    eps = float(jnp.finfo(dtype).eps)
    rtol = 100 * eps if rtol is None else rtol
    atol = 1e4 * eps if atol is None else atol
    p = params.broadcast()
    p = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).reshape(-1), p)
    I_flat = jnp.broadcast_to(I, shape).reshape(-1)
    V0_flat = jnp.broadcast_to(jnp.asarray(V0, dtype), shape).reshape(-1)
    solver = optx.Newton(rtol=rtol, atol=atol)

    def solve_one(p1, I1, v1):
        sol = optx.root_find(_rest_residual, solver, v1, args=(p1, I1), max_steps=100, throw=True)
        return sol.value

    V = jax.vmap(solve_one)(p, I_flat, V0_flat).reshape(shape)
    m, h, n = gate_steady_states(V)
    return HHState(V=V, m=m, h=h, n=n)
