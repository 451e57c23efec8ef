"""Equilibria: the steady-state I–V curve and every equilibrium at a holding current.

A state is an equilibrium iff every gate sits at its steady state ``x∞(V)`` and the injected
current balances the steady-state ionic current, ``I = I_ss(V)``. The equilibria at a given ``I``
are therefore the roots of a scalar function of V; :func:`hh_jax.resting_state` finds the one
nearest a guess by Newton's method (Optimistix, implicit-function-theorem gradients), and
:func:`equilibria` brackets all of them on a voltage grid and polishes each with it.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, PopArray, PopArrayLike, ScalarLike
from .._initial_state import resting_state
from .._params import HHParams
from .._validate import as_float_array, as_int, as_numbers
from .._vector_field import HHState, currents, gate_steady_states
from ._jacobian import _check_single


def steady_state_current(params: HHParams, V: PopArrayLike) -> PopArray:
    """The steady-state I–V curve ``I_ss(V) = I_ion(V, m∞(V), h∞(V), n∞(V))``, µA/cm².

    The equilibrium branch of the model is exactly the curve ``(I_ss(V), V)``: parametrised by
    V it passes through folds that a continuation in I cannot.

    **Arguments:** `params`: `HHParams`; `V`: membrane potential(s), mV, any shape
    broadcasting with the population.

    **Returns:** the holding current (µA/cm²) that makes `V` an equilibrium.

    **Example:** ``steady_state_current(HHParams.hh1952(), -64.996)`` ≈ 0.
    """
    if not isinstance(params, HHParams):
        raise TypeError(f"steady_state_current: params must be an HHParams, got {type(params).__name__}.")
    V = as_float_array("steady_state_current: V (mV)", V).astype(params.dtype)
    m, h, n = gate_steady_states(V)
    return currents(params, HHState(V=V, m=m, h=h, n=n)).total


def equilibria(
    params: HHParams,
    I: ScalarLike = 0.0,
    *,
    V_min: float = -120.0,
    V_max: float = 60.0,
    num: int = 2001,
) -> HHState:
    """Every equilibrium of one neuron at a holding current, in order of increasing V.

    Brackets the sign changes of ``I_ss(V) − I`` on a grid of `num` voltages in
    ``[V_min, V_max]`` and polishes each root with :func:`hh_jax.resting_state` (Newton,
    Optimistix). Not jit-compatible (the number of equilibria is data-dependent); each returned
    equilibrium is differentiable through `resting_state`.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `I`: holding current density, µA/cm², a concrete scalar. Default 0.0.
    - `V_min`, `V_max`: the voltage window searched, mV. Default −120 and 60.
    - `num`: grid points (≥ 3). Default 2001 (0.09 mV spacing).

    **Returns:** an `HHState` with shape ``[k]``, k ≥ 0 equilibria.

    **Example:** ``equilibria(HHParams.hh1952(), 0.0).V`` → ``[-64.996]``.
    """
    _check_single(params)
    if not (np.isfinite(V_min) and np.isfinite(V_max) and V_min < V_max):
        raise ValueError(f"V_min < V_max must be finite numbers (mV), got {V_min}, {V_max}.")
    num = as_int("num", num, minimum=3)
    I = float(as_numbers("I (uA/cm^2)", I))
    if not np.isfinite(I):
        raise ValueError(f"I must be finite (uA/cm^2), got {I}.")
    grid = jnp.linspace(V_min, V_max, num, dtype=params.dtype)
    g = np.asarray(steady_state_current(params, grid) - I)
    grid_np = np.asarray(grid)
    idx = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) <= 0)[0]
    if idx.size == 0:
        z = jnp.zeros((0,), params.dtype)
        return HHState(V=z, m=z, h=z, n=z)
    # the secant point of each bracket as a Newton start
    V0 = grid_np[idx] - g[idx] * (grid_np[idx + 1] - grid_np[idx]) / np.where(
        g[idx + 1] != g[idx], g[idx + 1] - g[idx], 1.0
    )
    p = params.broadcast()
    pv = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, V0.shape), p)
    y = resting_state(pv, jnp.full(V0.shape, I, params.dtype), V0=jnp.asarray(V0, params.dtype))
    V = np.asarray(y.V)
    keep = np.concatenate([[True], np.abs(np.diff(V)) > 1e-6])  # a root on a grid point
    keep = jnp.asarray(keep)
    return jax.tree_util.tree_map(lambda x: x[keep], y)


def equilibrium_voltage(params: HHParams, I: ScalarLike = 0.0, *, V0: ScalarLike = -65.0) -> Array:
    """The equilibrium potential (mV) nearest `V0` at holding current `I` (µA/cm²).

    A scalar shortcut for ``resting_state(params, I, V0=V0).V``; differentiable with respect to
    `params` and `I` by the implicit function theorem (Optimistix `ImplicitAdjoint`).

    **Example:** ``jax.grad(lambda gL: equilibrium_voltage(p.replace(gL=gL)))(0.3)``.
    """
    return resting_state(params, I, V0=V0).V


