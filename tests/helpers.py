"""Independent references for the tests: a NumPy HH model solved by SciPy, finite differences.

Nothing here imports hh_jax: the reference must not share code with what it checks.
"""

import functools

import numpy as np
from scipy.integrate import solve_ivp

PRESETS = {
    "brainpy": dict(C=1.0, gNa=120.0, ENa=50.0, gK=36.0, EK=-77.0, gL=0.03, EL=-54.387, V_th=20.0),
    "hh1952": dict(C=1.0, gNa=120.0, ENa=50.0, gK=36.0, EK=-77.0, gL=0.3, EL=-54.387, V_th=20.0),
}


def _vtrap(x, y):
    """x / (exp(x / y) - 1) written the textbook way, with the limit at x = 0."""
    x = np.asarray(x, float)
    out = np.empty_like(x)
    small = np.abs(x / y) < 1e-6
    out[small] = y * (1.0 - x[small] / y / 2.0)
    xs = x[~small]
    out[~small] = xs / np.expm1(xs / y)
    return out


def rates(V):
    V = np.asarray(V, float)
    am = 0.1 * _vtrap(-(V + 40.0), 10.0)
    bm = 4.0 * np.exp(-(V + 65.0) / 18.0)
    ah = 0.07 * np.exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + np.exp(-(V + 35.0) / 10.0))
    an = 0.01 * _vtrap(-(V + 55.0), 10.0)
    bn = 0.125 * np.exp(-(V + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def rhs(t, y, p, I):
    V, m, h, n = y
    am, bm, ah, bh, an, bn = (float(r[0]) for r in rates(np.array([V])))
    i_ion = p["gNa"] * m**3 * h * (V - p["ENa"]) + p["gK"] * n**4 * (V - p["EK"]) + p["gL"] * (V - p["EL"])
    return [
        (I(t) - i_ion) / p["C"],
        am * (1 - m) - bm * m,
        ah * (1 - h) - bh * h,
        an * (1 - n) - bn * n,
    ]


def steady_gates(V):
    am, bm, ah, bh, an, bn = rates(np.array([V]))
    return float(am[0] / (am[0] + bm[0])), float(ah[0] / (ah[0] + bh[0])), float(an[0] / (an[0] + bn[0]))


@functools.lru_cache(maxsize=None)
def reference_spikes(preset: str, current: float, duration: float = 200.0, V0: float = -65.0):
    """Spike times (ms) of one neuron under a constant current, from SciPy DOP853 at rtol 1e-11.

    Initial state: V0 with the gates at steady state. Crossings of V_th upward are located by
    SciPy's event root-finding on the dense output.
    """
    p = PRESETS[preset]
    y0 = [V0, *steady_gates(V0)]
    event = lambda t, y, *a: y[0] - p["V_th"]
    event.direction = 1.0
    sol = solve_ivp(
        rhs, (0.0, duration), y0, method="DOP853", rtol=1e-11, atol=1e-11,
        events=event, args=(p, lambda t: current),
    )
    assert sol.success
    return np.asarray(sol.t_events[0])


def central_fd(f, x, h):
    """Central finite difference of scalar f at scalar x with step h."""
    return (f(x + h) - f(x - h)) / (2 * h)
