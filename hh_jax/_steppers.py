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
| ``ExpMidpoint()``            | 2                    | as ExpEuler (exponential midpoint / Rush–Larsen 2)     |
| ``ExpRK4()``                 | 4                    | diagonal stiffness exact (ETDRK4): all spikes at dt = 0.1 ms |

\\* Measured spike-time errors against a float64 reference are in the README; the tests check
the orders by regression of the error on dt.
"""

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _model
from ._model import relax, v_update
from ._vector_field import HHState, injected_current, unpack_args, vector_field


class AbstractStepper(eqx.Module):
    """A one-step scheme advancing an `HHState` by `dt` (ms).

    Subclasses implement :meth:`step`; `order` is the classical order of the global error.
    """

    order: ClassVar[int]

    @abc.abstractmethod
    def step(self, t, y: HHState, dt, args) -> HHState:
        """Advance `y` from time `t` to ``t + dt`` (ms). ``args = (params, stimulus)``."""


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

    On the CPU, `simulate` runs this stepper's whole time loop in the fused C++ kernel (the
    `FusedCPU` backend) when the stimulus can be tabulated; elsewhere in the `lax.scan` loop
    (`ScanLoop`). Pass ``backend=`` to choose.

    **Arguments:**

    - `staggered`: bool, default True.

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
        V, m, h, n = _model.exp_euler_step(params, y.V, y.m, y.h, y.n, I, dt, self.staggered)
        return HHState(V=V, m=m, h=h, n=n)


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


class ExpMidpoint(AbstractStepper):
    """Second-order exponential Runge–Kutta (the Rush–Larsen 2 / exponential midpoint scheme).

    Every HH variable obeys ``dx/dt = a(y) − k(y)·x`` with ``k ≥ 0`` (each gate is linear in
    itself, V is linear in V). One step:

    1. a staggered exponential-Euler half step to ``t + dt/2`` (gates exactly under frozen V,
       then V exactly under the new gates), giving the midpoint state ``y½``;
    2. from ``y(t)``, a full step of length `dt` with every rate frozen at ``y½`` (and the
       current at ``t + dt/2``): gates ``x ← x∞(V½) + (x − x∞(V½))·e^{−dt·(α+β)(V½)}``, then V
       by the exact solution of its linear equation with the *new* gates.

    Second order (the midpoint rule in the exponential setting; the tests regress the order)
    and, like exponential Euler, unconditionally stable for the stiff diagonal part: the gates
    stay in [0, 1] for every dt. It keeps every spike at dt = 0.1 ms, where RK4 loses them,
    for two rate evaluations per step (staggered exponential Euler: one).

    **Example:** ``simulate(p, 10.0, duration=200.0, dt=0.05, stepper=ExpMidpoint())``.
    """

    order: ClassVar[int] = 2

    def step(self, t, y: HHState, dt, args) -> HHState:
        params, stimulus = unpack_args("ExpMidpoint.step", args)
        I_mid = injected_current(stimulus, t + 0.5 * dt)
        V = y.V
        half = 0.5 * dt
        phi = _model.rate_factor(params)
        am, bm, ah, bh, an, bn = _model.gate_rates(V, phi)
        m2 = relax(y.m, am, bm, half)
        h2 = relax(y.h, ah, bh, half)
        n2 = relax(y.n, an, bn, half)
        V2 = v_update(params, V, m2, h2, n2, I_mid, half)
        am, bm, ah, bh, an, bn = _model.gate_rates(V2, phi)
        m = relax(y.m, am, bm, dt)
        h = relax(y.h, ah, bh, dt)
        n = relax(y.n, an, bn, dt)
        V_new = v_update(params, V, m2, h2, n2, I_mid, dt)
        return HHState(V=V_new, m=m, h=h, n=n)


def _phi123(z):
    """(e^z, φ1, φ2, φ3)(z) for z ≤ 0, accurate near 0 (Taylor) and for large |z| (recurrence)."""
    small = jnp.abs(z) < 1.0
    zs = jnp.where(small, z, 0.0)
    # φ1 is the shared exprel (hh_jax._model); φ2, φ3 by their Taylor series near 0 (φ3 = Σ
    # z^j/(j+3)!, 16 terms: truncation < 1e-17 for |z| < 1) and the recurrence elsewhere.
    p1 = _model.exprel(z)
    coef = [1.0 / math.factorial(j + 3) for j in range(16)]
    p3 = jnp.full_like(zs, coef[-1])
    for c in reversed(coef[:-1]):
        p3 = c + zs * p3
    p2 = 0.5 + zs * p3
    e_small = 1.0 + zs * (1.0 + zs * p2)
    zb = jnp.where(small, -1.0, z)
    e_big = jnp.exp(zb)
    b2 = (_model.exprel(zb) - 1.0) / zb
    b3 = (b2 - 0.5) / zb
    pick = lambda a, b: jnp.where(small, a, b)
    return pick(e_small, e_big), p1, pick(p2, b2), pick(p3, b3)


class ExpRK4(AbstractStepper):
    """Fourth-order exponential Runge–Kutta (ETDRK4 of Cox & Matthews) on HH's diagonal stiffness.

    Every HH variable obeys ``dx/dt = a(y) − k(y)·x`` with ``k ≥ 0``: each gate is linear in
    itself (``k = α + β``) and V is linear in V (``k = g_tot/C``). At the start of each step the
    diagonal ``L = −k(y(t))`` is frozen and the remainder ``N(t, y) = f(t, y) − L·y`` is
    integrated by the ETDRK4 formulas (four vector-field evaluations, like RK4), the linear part
    exactly through the φ-functions ``φ_j(dt·L)``.

    Classical order 4 (the tests regress it). Because the fast self-decay of every variable is
    integrated exactly, it stays stable at dt = 0.1 ms (max spike-time error 0.02 ms, hh1952,
    I = 10, 200 ms), where classical RK4 loses almost all spikes; 1.1e-4 ms at dt = 0.025 ms.
    Where RK4 is stable (dt ≤ 0.05 ms) RK4 is more accurate and cheaper per step; ExpRK4 is
    the scheme for large fixed steps.

    **Example:** ``simulate(p, 10.0, duration=200.0, dt=0.05, stepper=ExpRK4())``.
    """

    order: ClassVar[int] = 4

    def step(self, t, y: HHState, dt, args) -> HHState:
        params, stimulus = unpack_args("ExpRK4.step", args)
        V = y.V
        g_na, g_k, g_l = _model.conductances(params, y.m, y.h, y.n)
        g_tot = g_na + (g_k + g_l)
        am, bm, ah, bh, an, bn = _model.gate_rates(V, _model.rate_factor(params))
        k = HHState(V=g_tot / params.C, m=am + bm, h=ah + bh, n=an + bn)
        tm = jax.tree_util.tree_map
        phis = tm(lambda ki: _phi123(-dt * ki), k)
        half = tm(lambda ki: _phi123(-0.5 * dt * ki), k)
        N = lambda tt, yy: tm(lambda f, ki, yi: f + ki * yi, vector_field(tt, yy, args), k, yy)

        def half_step(y_base, Nval):
            # y_base·e^{z/2} + (dt/2)·φ1(z/2)·Nval
            return tm(lambda yb, ph, nv: ph[0] * yb + 0.5 * dt * ph[1] * nv, y_base, half, Nval,
                      is_leaf=lambda x: isinstance(x, tuple))

        Nn = N(t, y)
        a = half_step(y, Nn)
        Na = N(t + 0.5 * dt, a)
        b = half_step(y, Na)
        Nb = N(t + 0.5 * dt, b)
        c = half_step(a, tm(lambda x, z: 2.0 * x - z, Nb, Nn))
        Nc = N(t + dt, c)

        def combine(yi, ph, n0, na, nb, nc):
            e, p1, p2, p3 = ph
            f1 = p1 - 3.0 * p2 + 4.0 * p3
            f2 = p2 - 2.0 * p3
            f3 = 4.0 * p3 - p2
            return e * yi + dt * (f1 * n0 + 2.0 * f2 * (na + nb) + f3 * nc)

        return tm(combine, y, phis, Nn, Na, Nb, Nc, is_leaf=lambda x: isinstance(x, tuple))


STEPPERS = {
    "exp_euler": ExpEuler,
    "rk4": RK4,
    "euler": Euler,
    "exp_midpoint": ExpMidpoint,
    "exp_rk4": ExpRK4,
}
"""CLI aliases for the scan steppers."""
