"""Spike plots: raster and firing-rate histogram. Lazy matplotlib; ``ax=None``; returns the Axes."""

from typing import Iterable

import numpy as np

from ._traces import _axes, _check_result


def _spike_lists(result, neurons) -> tuple[list[np.ndarray], list[int]]:
    times = np.asarray(result.spike_times)
    times = times.reshape(times.shape[0], -1)
    n = times.shape[1]
    idx = list(range(n)) if neurons is None else [int(i) for i in neurons]
    for i in idx:
        if not 0 <= i < n:
            raise ValueError(f"neurons: index {i} out of range for {n} neuron(s).")
    return [times[np.isfinite(times[:, i]), i] for i in idx], idx


def raster(result, *, ax=None, neurons: Iterable[int] | None = None, **kwargs):
    """Spike raster: a tick at each spike time (ms) on the row of its neuron.

    Uses ``result.spike_times`` (so no trace needs to be recorded).

    **Arguments:**

    - `result`: a `SimulationResult`.
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `neurons`: flat neuron indices, one row each (row k = ``neurons[k]``); default all.
    - `**kwargs`: passed to ``ax.eventplot`` (e.g. ``color``, ``linelengths``).

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.raster(hh_jax.simulate(p, I, duration=100.0, dt=0.01))``.
    """
    _check_result(result)
    ax = _axes(ax)
    lists, idx = _spike_lists(result, neurons)
    kwargs.setdefault("color", "black")
    kwargs.setdefault("linelengths", 0.8)
    ax.eventplot(lists, lineoffsets=np.arange(len(idx)), **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, len(idx) - 0.5)
    if len(idx) <= 20:
        ax.set_yticks(np.arange(len(idx)), [str(i) for i in idx])
    return ax


def rate_histogram(result, *, ax=None, bins=20, **kwargs):
    """Histogram of per-neuron firing rates (Hz) over the whole run.

    **Arguments:**

    - `result`: a `SimulationResult` (rates = ``spike_count / duration``).
    - `ax`: matplotlib Axes, or None (default) for a new figure.
    - `bins`: passed to ``ax.hist``. Default 20.
    - `**kwargs`: passed to ``ax.hist``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.rate_histogram(r, bins=30)``.
    """
    _check_result(result)
    ax = _axes(ax)
    rates = np.asarray(result.spike_count, dtype=float).ravel() / (result.duration / 1000.0)
    ax.hist(rates, bins=bins, **kwargs)
    ax.set_xlabel("firing rate (Hz)")
    ax.set_ylabel("neurons")
    return ax
