"""Initial states: gates at steady state, BrainPy's random initializer, the exact resting state."""

from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._custom_types import PopArrayLike, PRNGKeyArray, shape_arg
from ._params import HHParams
from ._validate import as_float_array
from ._vector_field import HHState, currents, gate_steady_states


def steady_state_at(V: PopArrayLike = -65.0, *, shape: int | Sequence[int] | None = None) -> HHState:
    """A state at potential `V` with every gate at its steady state ``x∞(V)``.

    This is the BrainState tutorial's initial state (``V = −65`` mV) and hh_jax's default.

    **Arguments:**

    - `V`: membrane potential, mV, scalar or array. Default −65.0.
    - `shape`: population shape to broadcast to (int or tuple); default: the shape of `V`.

    **Returns:** an `HHState`.

    **Example:** ``steady_state_at(-65.0, shape=10)``.
    """
    V = as_float_array("steady_state_at: V (mV)", V, finite=True, dtype=jnp.result_type(float))
    shape = shape_arg(shape) if shape is not None else jnp.shape(V)
    try:
        np.broadcast_shapes(jnp.shape(V), shape)
        V = jnp.broadcast_to(V, shape)
    except ValueError:
        raise ValueError(
            f"steady_state_at: V of shape {jnp.shape(V)} does not broadcast to shape={shape}."
        ) from None
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
    if not (isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )):
        raise TypeError(
            f"brainpy_initial_state: key must be a jax.random key (jax.random.key(seed)), got {key!r}."
        )
    shape = shape_arg(shape)
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
    if not isinstance(params, HHParams):
        raise TypeError(f"resting_state: params must be an HHParams, got {type(params).__name__}.")
    I = as_float_array("resting_state: I (uA/cm^2)", I, finite=True, dtype=params.dtype)
    V0 = as_float_array("resting_state: V0 (mV)", V0, finite=True, dtype=params.dtype)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and (
            isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not tol > 0
        ):
            raise ValueError(f"resting_state: {name} must be a positive number, got {tol!r}.")
    try:
        shape = tuple(np.broadcast_shapes(params.pop_shape, jnp.shape(I), jnp.shape(V0)))
    except ValueError:
        raise ValueError(
            f"resting_state: shapes do not broadcast: params {params.pop_shape}, "
            f"I {jnp.shape(I)}, V0 {jnp.shape(V0)}."
        ) from None
    dtype = jnp.result_type(params.dtype, I.dtype)
    eps = float(jnp.finfo(dtype).eps)
    rtol = 100 * eps if rtol is None else rtol
    atol = 1e4 * eps if atol is None else atol
    p = params.broadcast()
    p = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).reshape(-1), p)
    # Traced values are not checked above: a NaN/Inf must not reach the Newton solve silently.
    I = eqx.error_if(I, ~jnp.all(jnp.isfinite(I)), "resting_state: I must be finite.")
    I_flat = jnp.broadcast_to(I, shape).reshape(-1)
    V0_flat = jnp.broadcast_to(jnp.asarray(V0, dtype), shape).reshape(-1)
    solver = optx.Newton(rtol=rtol, atol=atol)

    def solve_one(p1, I1, v1):
        sol = optx.root_find(_rest_residual, solver, v1, args=(p1, I1), max_steps=100, throw=True)
        return sol.value

    V = jax.vmap(solve_one)(p, I_flat, V0_flat).reshape(shape)
    m, h, n = gate_steady_states(V)
    return HHState(V=V, m=m, h=h, n=n)
