"""Plots of hh_jax results. Matplotlib is imported lazily; every function takes ``ax=None``
(a new figure is made) and returns the Axes it drew on; extra keyword arguments go to
matplotlib.
"""

from typing import Iterable

import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _check_result(result):
    if not hasattr(result, "trace") or not hasattr(result, "t"):
        raise TypeError(f"result must be a SimulationResult, got {type(result).__name__}.")


def _columns(trace: np.ndarray, neurons) -> tuple[np.ndarray, list[int]]:
    trace = np.asarray(trace)
    flat = trace.reshape(trace.shape[0], -1)
    idx = list(range(flat.shape[1])) if neurons is None else [int(i) for i in neurons]
    for i in idx:
        if not 0 <= i < flat.shape[1]:
            raise ValueError(f"neurons: index {i} out of range for {flat.shape[1]} neuron(s).")
    return flat, idx


def voltage(result, *, ax=None, neurons: Iterable[int] | None = None, threshold: bool = True, **kwargs):
    """Membrane potential (mV) against time (ms) for some neurons.

    **Arguments:**

    - `result`: a `SimulationResult` with ``V`` recorded.
    - `ax`: matplotlib Axes, or None for a new figure.
    - `neurons`: flat neuron indices to draw; default all.
    - `threshold`: draw the spike threshold ``V_th`` as a dashed line (if scalar). Default True.
    - `**kwargs`: passed to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.voltage(hh_jax.simulate(p, 10.0, duration=100.0, dt=0.01))``.
    """
    _check_result(result)
    ax = _axes(ax)
    flat, idx = _columns(result.trace("V"), neurons)
    t = np.asarray(result.t)
    for i in idx:
        ax.plot(t, flat[:, i], label=f"neuron {i}" if len(idx) > 1 else "V", **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V (mV)")
    if 1 < len(idx) <= 10:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def gates(result, *, ax=None, neuron: int = 0, **kwargs):
    """Gate variables m, h, n (dimensionless) against time (ms) for one neuron.

    **Arguments:** `result` with ``m, h, n`` recorded; `ax`; `neuron`: flat index (default 0);
    `**kwargs` to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.gates(r, neuron=0)``.
    """
    _check_result(result)
    ax = _axes(ax)
    t = np.asarray(result.t)
    for name, color in (("m", "tab:red"), ("h", "tab:blue"), ("n", "tab:green")):
        flat, _ = _columns(result.trace(name), [neuron])
        ax.plot(t, flat[:, neuron], label=name, color=kwargs.pop("color", color), **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("gate open fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper right", fontsize="small")
    return ax
