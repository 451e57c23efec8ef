"""Fixed-step schemes for `lax.scan`: exponential Euler (staggered, the default), RK4, Euler.

Each stepper is a final `eqx.Module` with one pure method ``step(t, y, dt, args) -> y_next``,
where ``args = (params, stimulus)`` as for :func:`hh_jax.vector_field`.

| stepper                      | order (V, smooth)    | stability                                              |
|------------------------------|----------------------|--------------------------------------------------------|
| ``ExpEuler()`` (staggered)   | 1 (2 in spike times*)| unconditionally stable for the gates (exact under      |
|                              |                      | frozen V) and for V (exact under frozen gates)         |
| ``ExpEuler(staggered=False)``| 1                    | as above; BrainPy ``exp_auto`` / Brian2 ``exponential_euler`` |
| ``RK4()``                    | 4                    | explicit: loses spikes for dt ≳ 0.05 ms (the seed-001 pitfall) |
| ``Euler()``                  | 1                    | explicit: needs dt ≲ 0.05 ms                           |

\\* Measured spike-time errors against a float64 reference are in the README; the tests check
the orders by regression of the error on dt.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._rates import exprel, gate_rates
from ._vector_field import HHState, injected_current, unpack_args, vector_field


class AbstractStepper(eqx.Module):
    """A one-step scheme advancing an `HHState` by `dt` (ms).

    Subclasses implement :meth:`step`; `order` is the classical order of the global error.
    """

    order: ClassVar[int]

    @abc.abstractmethod
    def step(self, t, y: HHState, dt, args) -> HHState:
        """Advance `y` from time `t` to ``t + dt`` (ms). ``args = (params, stimulus)``."""


def _relax(x, a, b, dt):
    """Exact solution of dx/dt = a(1−x) − b·x over dt with a, b frozen; stays in [0, 1]."""
    k = a + b
    x_inf = a / k
    return x_inf + (x - x_inf) * jnp.exp(-dt * k)


class ExpEuler(AbstractStepper):
    """Exponential Euler, by default in the staggered form (hh_jax's default stepper).

    Staggered (``staggered=True``): the gates are advanced exactly over `dt` with V frozen
    (``x ← x∞ + (x − x∞)·e^{−dt/τ}``), then V is advanced by the exact solution of its
    linear-in-V equation using the *new* gates:
    ``V ← V + dt·(I − I_ion(V))/C · exprel(−dt·g/C)`` with ``g = gNa·m³h + gK·n⁴ + gL``.
    The injected current is evaluated at the step's midpoint ``t + dt/2``.

    Simultaneous (``staggered=False``): V is advanced with the *old* gates — BrainPy's
    ``exp_auto`` and Brian2's ``exponential_euler``. It is first order and misplaces spikes
    by about 1 ms after 200 ms at dt = 0.01 ms; the staggered form by about 0.01 ms.

    Both are unconditionally stable and keep the gates in [0, 1].

    **Arguments:** `staggered`: bool, default True.

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.025, stepper=ExpEuler())``.
    """

    staggered: bool = eqx.field(default=True, static=True)
    order: ClassVar[int] = 1

    def __check_init__(self):
        if not isinstance(self.staggered, bool):
            raise TypeError(f"ExpEuler.staggered must be a bool, got {self.staggered!r}.")

    def step(self, t, y: HHState, dt, args) -> HHState:
        params, stimulus = unpack_args("ExpEuler.step", args)
        I = injected_current(stimulus, t + 0.5 * dt)
        V = y.V
        # 8 exp/expm1 per neuron-step (was 12): 4 for the six rates (`gate_rates`, plus 3 sqrt),
        # 3 for the gate relaxations, 1 for V.
        am, bm, ah, bh, an, bn = gate_rates(V)
        m = _relax(y.m, am, bm, dt)
        h = _relax(y.h, ah, bh, dt)
        n = _relax(y.n, an, bn, dt)
        gm, gh, gn = (m, h, n) if self.staggered else (y.m, y.h, y.n)
        g_na = params.gNa * (gm * gm * gm * gh)
        n2 = gn * gn
        g_k = params.gK * (n2 * n2)
        g_tot = g_na + g_k + params.gL
        drive = I - (g_na * (V - params.ENa) + g_k * (V - params.EK) + params.gL * (V - params.EL))
        V_new = V + dt * drive / params.C * exprel(-dt * g_tot / params.C)
        return HHState(V=V_new, m=m, h=h, n=n)


def _axpy(a, x: HHState, y: HHState) -> HHState:
    return jax.tree_util.tree_map(lambda xi, yi: yi + a * xi, x, y)


class RK4(AbstractStepper):
    """The classical 4th-order Runge–Kutta method on :func:`hh_jax.vector_field`.

    Accurate for small steps (dt ≤ 0.025 ms) but explicit: dt = 0.1 ms is at the edge of its
    stability region: during a spike the membrane's own rate g_tot/C reaches ~36/ms
    (g_tot = gNa·m³h + gK·n⁴ + gL) and the m gate's α_m + β_m ~8/ms, while RK4 is stable only for
    dt·λ ≲ 2.79. Started from rest at I = 10 µA/cm² it diverges to NaN after two spikes. (Seed 001's broken dt = 0.1 figure had another cause, a time-axis mismatch; see
    notebook 03.)

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.01, stepper=RK4())``.
    """

    order: ClassVar[int] = 4

    def step(self, t, y: HHState, dt, args) -> HHState:
        k1 = vector_field(t, y, args)
        k2 = vector_field(t + 0.5 * dt, _axpy(0.5 * dt, k1, y), args)
        k3 = vector_field(t + 0.5 * dt, _axpy(0.5 * dt, k2, y), args)
        k4 = vector_field(t + dt, _axpy(dt, k3, y), args)
        return jax.tree_util.tree_map(
            lambda y0, a, b, c, d: y0 + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d), y, k1, k2, k3, k4
        )


class Euler(AbstractStepper):
    """Forward Euler: ``y ← y + dt·f(t, y)``. First order, explicit; the course notebook's scheme.

    **Example:** ``simulate(p, 10.0, duration=100.0, dt=0.01, stepper=Euler())``.
    """

    order: ClassVar[int] = 1

    def step(self, t, y: HHState, dt, args) -> HHState:
        return _axpy(dt, vector_field(t, y, args), y)


STEPPERS = {"exp_euler": ExpEuler, "rk4": RK4, "euler": Euler}
"""CLI aliases for the scan steppers."""
