"""The (V, n) projection of the 4-D flow: trajectories, the limit cycle, the equilibrium."""

import equinox as eqx
import jax.numpy as jnp

from .._custom_types import Array, ScalarLike
from .._initial_state import resting_state
from .._params import HHParams
from .._simulate import simulate
from .._vector_field import HHState
from .._validate import as_float_array
from ._jacobian import _check_single


class PhasePlane(eqx.Module):
    """Data for a (V, n) phase portrait of one neuron under a constant current.

    **Fields:**

    - `I`: current, µA/cm².
    - `t`: sample times, ms, ``[samples]``.
    - `V`, `n`: trajectories, ``[samples, k]`` (mV, 1), one column per initial state.
    - `V_eq`, `n_eq`: the equilibrium nearest rest (mV, 1).
    - `V_nullcline`, `n_nullcline`: the ``n`` values on the V-nullcline (m = m∞(V), h = h at
      the equilibrium) and on the n-nullcline (n = n∞(V)), on the grid `V_grid` (mV).
    """

    I: Array
    t: Array
    V: Array
    n: Array
    V_eq: Array
    n_eq: Array
    V_grid: Array
    V_nullcline: Array
    n_nullcline: Array


def phase_plane(
    params: HHParams,
    I: ScalarLike,
    initial: HHState,
    *,
    duration: float = 100.0,
    dt: float = 0.01,
    record_every: int = 5,
    V_grid=None,
) -> PhasePlane:
    """Trajectories of the full 4-D model projected on the (V, n) plane, with the equilibrium.

    The projection is the seeds' ad-hoc view: the trajectories may cross in it. The nullclines
    are those of the 2-D reduction with m = m∞(V) and h frozen at its equilibrium value.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `I`: constant current, µA/cm².
    - `initial`: `HHState` with shape ``[k]``: one trajectory per state.
    - `duration`, `dt`: ms. Default 100 and 0.01.
    - `record_every`: keep every k-th step. Default 5.
    - `V_grid`: voltages for the nullclines, mV. Default 400 points in [−80, 50].

    **Returns:** a `PhasePlane`.

    **Example:** ``phase_plane(p, 10.0, hh_jax.steady_state_at(jnp.array([-65.0, -40.0])))``.
    """
    _check_single(params)
    if not isinstance(initial, HHState):
        raise TypeError(f"initial must be an HHState, got {type(initial).__name__}.")
    if len(initial.shape) != 1:
        raise ValueError(f"initial must have shape [k], got {initial.shape}.")
    I = as_float_array("phase_plane: I (uA/cm^2)", I).astype(params.dtype)
    if V_grid is not None:
        V_grid = as_float_array("phase_plane: V_grid (mV)", V_grid)
        if V_grid.ndim != 1 or V_grid.size < 2:
            raise ValueError(f"phase_plane: V_grid must be a 1-D array of >= 2 voltages (mV), got shape {V_grid.shape}.")
    r = simulate(params, I, duration=duration, dt=dt, y0=initial, record=("V", "n"), record_every=record_every)
    eq = resting_state(params, I)
    Vg = jnp.linspace(-80.0, 50.0, 400, dtype=params.dtype) if V_grid is None else jnp.asarray(V_grid, params.dtype)
    from .._vector_field import gate_steady_states

    m_inf, _, n_inf = gate_steady_states(Vg)
    # V-nullcline: gNa m∞³ h_eq (V−ENa) + gK n⁴ (V−EK) + gL (V−EL) = I, solved for n ≥ 0
    num = I - params.gNa * m_inf**3 * eq.h * (Vg - params.ENa) - params.gL * (Vg - params.EL)
    n4 = num / (params.gK * (Vg - params.EK))
    n_V = jnp.where(n4 >= 0, jnp.abs(n4) ** 0.25, jnp.nan)
    return PhasePlane(
        I=I, t=r.t, V=r.V, n=r.n, V_eq=eq.V, n_eq=eq.n,
        V_grid=Vg, V_nullcline=n_V, n_nullcline=n_inf,
    )
