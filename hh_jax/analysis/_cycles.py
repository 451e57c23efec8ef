"""Periodic orbits by shooting: Newton on the periodic boundary-value problem, period unknown."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Complex

from .._custom_types import Array, Float, ScalarLike
from .._params import HHParams
from .._simulate import simulate
from .._vector_field import HHState
from .._validate import as_float_array, as_int, as_number, as_numbers
from ._jacobian import _check_single, _field, from_vector, to_vector


class LimitCycle(eqx.Module):
    """A periodic orbit of one neuron under a constant current.

    **Fields:**

    - `I`: the current, µA/cm².
    - `state`: a point on the orbit (`HHState` of scalars; the phase is fixed by the shooting's
      phase condition).
    - `period`: ms.
    - `V_max`, `V_min`: extreme membrane potentials along the orbit, mV.
    - `multipliers`: ``[4]`` complex Floquet multipliers (eigenvalues of the monodromy matrix),
      by decreasing modulus; one of them is 1 (the flow direction). The cycle is stable if the
      other three lie inside the unit circle.
    - `residual`: max-norm of ``φ_T(x₀) − x₀`` at the solution (mV and gate units).
    - `path`: the orbit at `samples` equally spaced times over one period (`HHState`
      ``[samples]``).
    """

    I: Array
    state: HHState
    period: Array
    V_max: Array
    V_min: Array
    multipliers: Complex[Array, "4"]
    residual: Array
    path: HHState

    @property
    def frequency(self) -> Array:
        """Firing rate on the cycle, Hz (``1000 / period``)."""
        return 1000.0 / self.period

    @property
    def stable(self) -> Array:
        """True if all multipliers but the trivial one have modulus < 1."""
        return _stable(self.multipliers)


def _stable(multipliers) -> Array:
    trivial = jnp.argmin(jnp.abs(multipliers - 1.0))
    others = jnp.where(jnp.arange(4) == trivial, 0.0, jnp.abs(multipliers))
    return jnp.all(others < 1.0)


class _Tol(eqx.Module):
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)


def _solve(x0, T, params, I, tol: _Tol, saveat):
    """Integrate ``dx/ds = T f(x)`` for s ∈ [0, 1] (so the period is an ordinary argument)."""
    term = diffrax.ODETerm(lambda s, x, args: args[0] * _field(x, args[1], args[2]))
    return diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        0.0,
        1.0,
        1e-3,
        x0,
        args=(T, params, I),
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=tol.rtol, atol=tol.atol),
        adjoint=diffrax.DirectAdjoint(),
        max_steps=tol.max_steps,
        throw=False,
    )


def flow(x0: Float[Array, "4"], T, params: HHParams, I, *, rtol=1e-10, atol=1e-10, max_steps=2048):
    """The state after time `T` (ms) from `x0` (``[V, m, h, n]``) under constant `I` (Diffrax).

    Integrated by Tsit5 with tolerance `rtol`/`atol` (default 1e-10), differentiable in forward
    and reverse mode (`diffrax.DirectAdjoint`).

    **Example:** ``flow(to_vector(y), 14.6, p, 10.0)``.
    """
    x0 = as_float_array("flow: x0", x0)
    if x0.shape != (4,):
        raise ValueError(f"flow: x0 must have shape (4,) ([V, m, h, n]), got {x0.shape}.")
    _check_single(params)
    tol = _Tol(rtol, atol, max_steps)
    return _solve(x0, T, params, I, tol, diffrax.SaveAt(t1=True)).ys[-1]


def _shooting_residual(z, args):
    params, I, x_ref, f_ref, tol = args
    x0, T = z[:4], z[4]
    xT = _solve(x0, T, params, I, tol, diffrax.SaveAt(t1=True)).ys[-1]
    # phase condition: x0 lies on the hyperplane through x_ref orthogonal to the flow there
    phase = jnp.dot(f_ref, x0 - x_ref) / jnp.linalg.norm(f_ref)
    return jnp.concatenate([xT - x0, phase[None]])


@eqx.filter_jit
def _shoot(params, I, x_guess, T_guess, tol: _Tol, newton_rtol, newton_atol, samples: int):
    x_ref = jax.lax.stop_gradient(x_guess)
    f_ref = jax.lax.stop_gradient(_field(x_ref, params, I))
    z0 = jnp.concatenate([x_guess, T_guess[None]])
    sol = optx.root_find(
        _shooting_residual,
        optx.Newton(rtol=newton_rtol, atol=newton_atol),
        z0,
        args=(params, I, x_ref, f_ref, tol),
        max_steps=40,
        throw=False,
    )
    z = sol.value
    x0, T = z[:4], z[4]
    ok = (sol.result == optx.RESULTS.successful) & jnp.all(jnp.isfinite(z)) & (T > 0)
    ts = jnp.linspace(0.0, 1.0, samples)
    path = _solve(x0, T, params, I, tol, diffrax.SaveAt(ts=ts)).ys
    monodromy = jax.jacfwd(lambda x: _solve(x, T, params, I, tol, diffrax.SaveAt(t1=True)).ys[-1])(
        jax.lax.stop_gradient(x0)
    )
    mult = jnp.linalg.eigvals(jax.lax.stop_gradient(monodromy))
    mult = mult[jnp.argsort(-jnp.abs(mult))]
    return LimitCycle(
        I=I,
        state=from_vector(x0),
        period=T,
        V_max=jnp.max(path[:, 0]),
        V_min=jnp.min(path[:, 0]),
        multipliers=mult,
        residual=jnp.max(jnp.abs(path[-1] - path[0])),
        path=HHState(V=path[:, 0], m=path[:, 1], h=path[:, 2], n=path[:, 3]),
    ), ok


def limit_cycle(
    params: HHParams,
    I: ScalarLike,
    guess: HHState,
    period: ScalarLike,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    newton_tol: float = 1e-9,
    samples: int = 2001,
    max_steps: int = 2048,
) -> LimitCycle:
    """Find the periodic orbit near a guess by shooting.

    Unknowns: the initial state ``x₀`` and the period ``T``. Equations: ``φ_T(x₀) − x₀ = 0``
    (4) and the phase condition ``f(x_g)·(x₀ − x_g) = 0`` (the orbit crosses the hyperplane
    through the guess ``x_g`` orthogonal to the flow there). Solved by Newton's method
    (Optimistix) with the flow integrated by Diffrax (Tsit5, tolerance `rtol`/`atol`); the
    result is differentiable with respect to `params` and `I` by the implicit function theorem.
    Converges to stable and unstable orbits alike; `multipliers` tell which.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `I`: constant current density, µA/cm².
    - `guess`: a state near the orbit (`HHState` of scalars), e.g. from :func:`cycle_guess`.
    - `period`: period guess, ms.
    - `rtol`, `atol`: Diffrax tolerances. Default 1e-10.
    - `newton_tol`: Newton's relative and absolute tolerance. Default 1e-9.
    - `samples`: points along the orbit for `V_max`/`V_min`. Default 2001.
    - `max_steps`: Diffrax step budget per period. Default 2048.

    **Returns:** a `LimitCycle`.

    **Example:**

    ```python
    p = hh_jax.HHParams.hh1952()
    y, T = cycle_guess(p, 10.0)
    c = limit_cycle(p, 10.0, y, T)
    c.frequency  # 68.32 Hz
    ```
    """
    _check_single(params)
    if not isinstance(guess, HHState):
        raise TypeError(f"guess must be an HHState, got {type(guess).__name__}.")
    dtype = params.dtype
    T = jnp.asarray(period, dtype)
    if not isinstance(T, jax.core.Tracer) and not float(T) > 0:
        raise ValueError(f"period must be > 0 (ms), got {float(T)}.")
    tol = _Tol(float(rtol), float(atol), int(max_steps))
    cycle, ok = _shoot(
        params, jnp.asarray(I, dtype), to_vector(guess).astype(dtype), T, tol,
        float(newton_tol), float(newton_tol), int(samples),
    )
    return eqx.error_if(
        cycle, ~ok, "limit_cycle: Newton's method on the shooting problem did not converge."
    )


def cycle_path(cycle: LimitCycle, params: HHParams, *, samples: int = 1001, rtol: float = 1e-10) -> HHState:
    """The orbit sampled at `samples` equally spaced times over one period (`HHState` ``[samples]``).

    **Example:** ``path = cycle_path(c, p); path.V.max()``.
    """
    if not isinstance(cycle, LimitCycle):
        raise TypeError(f"cycle_path: cycle must be a LimitCycle (from limit_cycle), got {type(cycle).__name__}.")
    samples = as_int("cycle_path: samples", samples, minimum=2)
    tol = _Tol(float(rtol), float(rtol), 4096)
    ts = jnp.linspace(0.0, 1.0, samples)
    ys = _solve(to_vector(cycle.state), cycle.period, params, cycle.I, tol, diffrax.SaveAt(ts=ts)).ys
    return HHState(V=ys[:, 0], m=ys[:, 1], h=ys[:, 2], n=ys[:, 3])


def cycle_guess(
    params: HHParams,
    I: ScalarLike,
    *,
    y0: HHState | None = None,
    duration: float = 300.0,
    dt: float = 0.01,
) -> tuple[HHState, Array]:
    """A point near the attracting orbit and its period, from a simulation.

    Runs :func:`hh_jax.simulate` for `duration` ms (default 300) at `dt` (default 0.01 ms)
    from `y0` (default: the resting state at I = 0, i.e. a current step), and returns the state
    at the last upward crossing of the mid-level between the last third's V extremes and the
    time since the previous crossing.

    **Returns:** ``(state, period)``; raises `ValueError` if the run does not oscillate.

    **Example:** ``y, T = cycle_guess(HHParams.hh1952(), 10.0)``.
    """
    from .._initial_state import resting_state

    _check_single(params)
    for name, v in (("duration", duration), ("dt", dt)):
        as_number(f"cycle_guess: {name}", v, unit="ms", positive=True)
    I = as_numbers("cycle_guess: I (uA/cm^2)", I)
    if I.shape != () or not np.isfinite(I):
        raise ValueError(f"cycle_guess: I must be a finite scalar (uA/cm^2), got {I!r}.")
    if y0 is None:
        y0 = resting_state(params, 0.0)
    r = simulate(params, float(I), duration=duration, dt=dt, y0=y0, record=("V", "m", "h", "n"))
    V = np.asarray(r.V)
    tail = V[2 * len(V) // 3 :]
    if tail.max() - tail.min() < 1e-3:
        raise ValueError(f"cycle_guess: no oscillation at I = {float(I)} uA/cm^2 from this start.")
    level = 0.5 * (tail.max() + tail.min())
    up = np.nonzero((V[:-1] < level) & (V[1:] >= level))[0]
    if len(up) < 2:
        raise ValueError(f"cycle_guess: fewer than two cycles at I = {float(I)} uA/cm^2.")
    k = up[-1]
    t = np.asarray(r.t)
    frac = (level - V[up]) / (V[up + 1] - V[up])
    tc = t[up] + frac * (t[1] - t[0])
    state = HHState(V=r.V[k], m=r.m[k], h=r.h[k], n=r.n[k])
    return state, jnp.asarray(tc[-1] - tc[-2], params.dtype)


class CycleBranch(eqx.Module):
    """Periodic orbits continued over the current (see :func:`cycle_branch`).

    **Fields** (each ``[k]``, k = the currents where an orbit was found): `I` (µA/cm²),
    `period` (ms), `V_max`, `V_min` (mV), `stable` (bool), `states` (`HHState` ``[k]``, a point
    on each orbit), `paths` (`HHState` ``[k, samples]``, each orbit over one period).
    """

    I: Array
    period: Array
    V_max: Array
    V_min: Array
    stable: Array
    states: HHState
    paths: HHState

    def guess(self, k: int) -> tuple[HHState, Array]:
        """``(state, period)`` of the k-th orbit: a warm start for `limit_cycle`/`cycle_branch`."""
        return jax.tree_util.tree_map(lambda x: x[k], self.states), self.period[k]

    @property
    def frequency(self) -> Array:
        """Firing rate on each orbit, Hz."""
        return 1000.0 / self.period


def cycle_branch(
    params: HHParams,
    currents,
    *,
    guess: tuple[HHState, ScalarLike] | None = None,
    rtol: float = 1e-10,
    samples: int = 2001,
) -> CycleBranch:
    """Continue a periodic orbit over a sequence of currents by warm-started shooting.

    The first orbit starts from `guess` (default :func:`cycle_guess` at the first current);
    each next one from the previous orbit. Where Newton fails (or lands on a multiple of the
    period), a fresh guess is simulated from the previous orbit's state; if that fails too the
    branch ends there (e.g. past a fold of cycles or a Hopf point). Keep steps small
    (≲ 5 µA/cm²) for a smooth branch. Python loop over one jitted shooting solve.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `currents`: 1-D sequence of currents, µA/cm², in continuation order.
    - `guess`: optional ``(state, period)`` near the first orbit.
    - `rtol`: Diffrax tolerance. Default 1e-10.
    - `samples`: points per orbit for V max/min. Default 2001.

    **Returns:** a `CycleBranch` over the currents where an orbit was found.

    **Example:** ``cycle_branch(HHParams.hh1952(), np.arange(10.0, 150.0, 5.0)).frequency``.
    """
    _check_single(params)
    I_all = as_numbers("currents (uA/cm^2)", currents)
    if I_all.ndim != 1 or I_all.size < 1 or not np.all(np.isfinite(I_all)):
        raise ValueError("currents must be a non-empty 1-D sequence of finite numbers (uA/cm^2).")
    dtype = params.dtype
    tol = _Tol(float(rtol), float(rtol), 2048)
    state, T = guess if guess is not None else cycle_guess(params, I_all[0])
    x, T = to_vector(state).astype(dtype), jnp.asarray(T, dtype)
    found = []
    for I in I_all:
        Ij = jnp.asarray(I, dtype)
        c, ok = _shoot(params, Ij, x, T, tol, 1e-9, 1e-9, int(samples))
        if not bool(ok) or not (0.6 * float(T) < float(c.period) < 1.6 * float(T)):
            try:
                y1, T1 = cycle_guess(params, I, y0=from_vector(x))
            except ValueError:
                break
            c, ok = _shoot(params, Ij, to_vector(y1), T1, tol, 1e-9, 1e-9, int(samples))
            if not bool(ok):
                break
        found.append(c)
        x, T = to_vector(c.state), c.period
    if not found:
        raise ValueError("cycle_branch: no periodic orbit found at the first current.")
    stack = lambda *xs: jnp.stack(xs)
    cs = jax.tree_util.tree_map(stack, *found)
    return CycleBranch(
        I=cs.I, period=cs.period, V_max=cs.V_max, V_min=cs.V_min,
        stable=jax.vmap(_stable)(cs.multipliers),
        states=cs.state,
        paths=cs.path,
    )
