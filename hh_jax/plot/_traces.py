"""Time-series plots of hh_jax results: voltage, gates, currents, conductances, stacked traces.

Matplotlib is imported lazily; every function takes ``ax=None`` (a new figure is made), passes
extra keyword arguments to ``ax.plot`` and returns the Axes it drew on.
"""

from typing import Iterable

import numpy as np

from .._observables import OBSERVABLES, names_in_group


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _check_result(result):
    if not hasattr(result, "trace") or not hasattr(result, "t"):
        raise TypeError(f"result must be a SimulationResult, got {type(result).__name__}.")


def _check_kind(arg: str, value, expected: str, *attrs: str) -> None:
    """Duck-typed check that `value` has `attrs`; a `TypeError` naming `arg` and `expected` otherwise."""
    if not all(hasattr(value, a) for a in attrs):
        raise TypeError(f"{arg} must be {expected}, got {type(value).__name__}.")


def _numeric(arg: str, value) -> np.ndarray:
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"{arg} must be an array of numbers, got {value!r:.60}.")
    return a


def _columns(trace, neurons) -> tuple[np.ndarray, list[int]]:
    trace = np.asarray(trace)
    flat = trace.reshape(trace.shape[0], -1)
    idx = list(range(flat.shape[1])) if neurons is None else [int(i) for i in neurons]
    for i in idx:
        if not 0 <= i < flat.shape[1]:
            raise ValueError(f"neurons: index {i} out of range for {flat.shape[1]} neuron(s).")
    return flat, idx


def _one(trace, neuron: int) -> np.ndarray:
    flat, _ = _columns(trace, [neuron])
    return flat[:, neuron]


def voltage(result, *, ax=None, neurons: Iterable[int] | None = None, threshold: float | None = None, **kwargs):
    """Membrane potential (mV) against time (ms), one line per neuron.

    **Arguments:**

    - `result`: a `SimulationResult` with ``V`` recorded.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neurons`: flat neuron indices to draw; default all.
    - `threshold`: if a number (mV), draw it as a dashed red line (e.g. ``params.V_th``).
      Default None (no line).
    - `**kwargs`: passed to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.voltage(hh_jax.simulate(p, 10.0, duration=100.0, dt=0.01))``.
    """
    ax = _axes(ax)
    _check_result(result)
    flat, idx = _columns(result.trace("V"), neurons)
    t = np.asarray(result.t)
    for i in idx:
        ax.plot(t, flat[:, i], label=f"neuron {i}" if len(idx) > 1 else "V", **kwargs)
    if threshold is not None and not isinstance(threshold, bool):
        ax.axhline(float(threshold), color="tab:red", linestyle="--", alpha=0.5, label="threshold")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V (mV)")
    if 1 < len(idx) <= 10:
        ax.legend(loc="upper right", fontsize="small")
    return ax


_COLORS = ("tab:purple", "tab:green", "black", "tab:red", "tab:blue", "tab:orange", "tab:brown")
_GATE_COLORS = {"m": "tab:red", "h": "tab:blue", "n": "tab:green"}


def _named_lines(result, names, colors, neuron, ax, ylabel, kwargs):
    _check_result(result)
    ax = _axes(ax)
    t = np.asarray(result.t)
    color = kwargs.pop("color", None)
    for name, c in zip(names, colors):
        ax.plot(t, _one(result.trace(name), neuron), label=name, color=color or c, **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize="small")
    return ax


def traces(result, names: Iterable[str], *, ax=None, neuron: int = 0, **kwargs):
    """Any recorded traces (names of `hh_jax.RECORDABLE`) against time (ms) for one neuron.

    The y label and unit come from the observables table (`hh_jax.OBSERVABLES`); the traces
    must share one unit.

    **Arguments:**

    - `result`: a `SimulationResult` with every name in `names` recorded.
    - `names`: recordable names, e.g. ``("INa", "IK")`` or ``("I",)``.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neuron`: flat neuron index. Default 0.
    - `**kwargs`: passed to ``ax.plot`` (``color`` overrides every colour).

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.traces(r, ("I",))`` draws the injected current (µA/cm²).
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    bad = [n for n in names if not isinstance(n, str) or n not in OBSERVABLES]
    if bad or not names:
        raise ValueError(f"names: unknown or empty {bad or list(names)}; recordable: {list(OBSERVABLES)}.")
    units = sorted({OBSERVABLES[n].unit for n in names})
    if len(units) > 1:
        raise ValueError(f"names: the traces have different units {units}; plot them on separate axes.")
    if len(names) == 1:
        ylabel = f"{names[0]}, {OBSERVABLES[names[0]].label} ({units[0]})"
    else:
        ylabel = f"{_GROUP_LABELS.get(OBSERVABLES[names[0]].group, 'value')} ({units[0]})"
    colors = [_GATE_COLORS.get(n, _COLORS[i % len(_COLORS)]) for i, n in enumerate(names)]
    return _named_lines(result, names, colors, neuron, ax, ylabel, kwargs)


_GROUP_LABELS = {"gate": "gate open fraction", "current": "current", "conductance": "conductance",
                 "state": "membrane potential", "stimulus": "injected current"}


def gates(result, *, ax=None, neuron: int = 0, **kwargs):
    """Gate variables m, h, n (dimensionless) against time (ms) for one neuron.

    **Arguments:**

    - `result`: a `SimulationResult` with ``m, h, n`` recorded.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neuron`: flat neuron index. Default 0.
    - `**kwargs`: passed to ``ax.plot`` (``color`` overrides all three colours).

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.gates(r, neuron=0)``.
    """
    ax = traces(result, names_in_group("gate"), ax=ax, neuron=neuron, **kwargs)
    ax.set_ylim(-0.02, 1.02)
    return ax


def current_traces(result, *, ax=None, neuron: int = 0, **kwargs):
    """Ionic current densities INa, IK, IL (µA/cm², outward positive) against time (ms).

    **Arguments:**

    - `result`: a `SimulationResult` with ``INa, IK, IL`` recorded
      (``simulate(..., record=("V", "INa", "IK", "IL"))``).
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neuron`: flat neuron index. Default 0.
    - `**kwargs`: passed to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.current_traces(r, ax=axes[2])``.
    """
    return traces(result, names_in_group("current"), ax=ax, neuron=neuron, **kwargs)


def conductance_traces(result, *, ax=None, neuron: int = 0, **kwargs):
    """Conductance densities gNa·m³h, gK·n⁴, gL (mS/cm²) against time (ms).

    **Arguments:**

    - `result`: a `SimulationResult` with ``gNa, gK, gL`` recorded.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neuron`: flat neuron index. Default 0.
    - `**kwargs`: passed to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.conductance_traces(r, ax=axes[1])``.
    """
    return traces(result, names_in_group("conductance"), ax=ax, neuron=neuron, **kwargs)


def stacked(result, *, ax=None, neurons: Iterable[int] | None = None, offset: float = 130.0, ticks: bool = False, **kwargs):
    """Voltage traces stacked vertically, neuron ``k`` shifted up by ``k·offset`` mV (seed 002).

    **Arguments:**

    - `result`: a `SimulationResult` with ``V`` recorded.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neurons`: flat neuron indices, bottom to top; default all.
    - `offset`: vertical shift between consecutive traces, mV. Default 130.0.
    - `ticks`: keep the axis ticks (False, as in seed 002's figure, hides them). Default False.
    - `**kwargs`: passed to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.stacked(r, offset=130.0)``.
    """
    ax = _axes(ax)
    _check_result(result)
    flat, idx = _columns(result.trace("V"), neurons)
    t = np.asarray(result.t)
    for k, i in enumerate(idx):
        ax.plot(t, flat[:, i] + k * offset, label=f"neuron {i}", **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(f"V (mV), traces offset by {offset:g} mV")
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    return ax
