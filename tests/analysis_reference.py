"""Independent references for the dynamics tests: NumPy/SciPy only (no hh_jax).

Equilibria by `scipy.optimize.brentq` on the steady-state I-V relation of the NumPy model in
`helpers.py`; eigenvalues of a central finite-difference Jacobian by NumPy; Hopf points by
`brentq` on the real part of the complex pair; periods and rates by SciPy DOP853 with events.
"""

import functools

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import helpers as H


def steady_current(p, V):
    m, h, n = H.steady_gates(V)
    return p["gNa"] * m**3 * h * (V - p["ENa"]) + p["gK"] * n**4 * (V - p["EK"]) + p["gL"] * (V - p["EL"])


def equilibrium(p, I, lo=-90.0, hi=0.0):
    """The equilibrium [V, m, h, n] at current I (the I-V relation is monotone for both presets)."""
    V = brentq(lambda V: steady_current(p, V) - I, lo, hi, xtol=1e-14, rtol=1e-15)
    return np.array([V, *H.steady_gates(V)])


def fd_jacobian(p, I, y, h=1e-6):
    J = np.zeros((4, 4))
    f = lambda x: np.array(H.rhs(0.0, x, p, lambda t: I))
    for j in range(4):
        e = np.zeros(4)
        e[j] = h * (abs(y[0]) if j == 0 else 1.0)
        J[:, j] = (f(y + e) - f(y - e)) / (2 * e[j])
    return J


def eigenvalues(p, I):
    w = np.linalg.eigvals(fd_jacobian(p, I, equilibrium(p, I)))
    return w[np.argsort(-w.real)]


def pair_real_part(p, I):
    w = eigenvalues(p, I)
    c = w[np.abs(w.imag) > 1e-9]
    return c.real.max()


def hopf_points(p, I_max=250.0, num=126):
    Is = np.linspace(0.0, I_max, num)
    r = np.array([pair_real_part(p, I) for I in Is])
    out = []
    for k in np.nonzero(np.sign(r[:-1]) != np.sign(r[1:]))[0]:
        out.append(brentq(lambda I: pair_real_part(p, I), Is[k], Is[k + 1], xtol=1e-10))
    return np.array(out)


@functools.lru_cache(maxsize=None)
def steady_rate(preset, I, duration=400.0, start_I=0.0):
    """(rate in Hz over the last half, V max, V min on the last cycle) from rest at start_I."""
    p = H.PRESETS[preset]
    y0 = equilibrium(p, start_I)
    ev = lambda t, y, *a: y[0] - p["V_th"]
    ev.direction = 1.0
    sol = solve_ivp(H.rhs, (0.0, duration), y0, method="DOP853", rtol=1e-10, atol=1e-10,
                    events=ev, args=(p, lambda t: I), dense_output=True)
    ts = sol.t_events[0]
    late = ts[ts > duration / 2]
    if len(late) < 2 or duration - late[-1] > 2 * np.mean(np.diff(late)):
        return 0.0, np.nan, np.nan
    T = late[-1] - late[-2]
    tt = np.linspace(late[-2], late[-1], 20001)
    V = sol.sol(tt)[0]
    return 1000.0 / np.mean(np.diff(late)), 1000.0 / T, V.max(), V.min()
