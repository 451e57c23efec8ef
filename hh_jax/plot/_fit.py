"""Plots for fits: data vs model overlay, loss curves, per-start parameter spread."""

import numpy as np

from ._traces import _axes, _check_kind, _check_result, _numeric


def fit_overlay(t, V_data, result, *, ax=None, trace: int | None = None, **kwargs):
    """Recorded voltage (grey dots) and the fitted model's voltage (line), mV against ms.

    **Arguments:**

    - `t`: sample times of the data, ms, ``[T]``.
    - `V_data`: recorded voltage, mV, ``[T]`` or ``[T, P]`` (P protocols).
    - `result`: `SimulationResult` of the fitted model with ``V`` recorded.
    - `ax`: Axes or None; `trace`: draw only this protocol (default all);
      `**kwargs`: passed to the model's ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.fit_overlay(rec.t, rec.V, objective.simulate(res.params))``.
    """
    _check_result(result)
    t, V_data = _numeric("t", t), _numeric("V_data", V_data)
    if t.ndim != 1 or V_data.shape[:1] != t.shape:
        raise ValueError(f"V_data (shape {V_data.shape}) must have one row per time in t (shape {t.shape}).")
    ax = _axes(ax)
    Vd = np.asarray(V_data).reshape(len(np.asarray(t)), -1)
    Vm = np.asarray(result.trace("V"))
    Vm = Vm.reshape(Vm.shape[0], -1)
    tm = np.asarray(result.t)
    idx = range(Vd.shape[1]) if trace is None else [trace]
    for i in idx:
        ax.plot(t, Vd[:, i], ".", ms=1.5, color="0.6", label="data" if i == idx[0] else None)
        ax.plot(tm, Vm[:, min(i, Vm.shape[1] - 1)], lw=1.0, label=f"fit {i}" if Vd.shape[1] > 1 else "fit", **kwargs)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V (mV)")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def loss_curve(fit_result, *, ax=None, **kwargs):
    """Loss of every start against optimiser step (log scale); rejected steps are gaps.

    **Arguments:** `fit_result`: a `FitResult` (or a ``[steps, K]`` array); `ax`; `**kwargs` to
    ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.loss_curve(res)``.
    """
    if np.ndim(_numeric("fit_result", getattr(fit_result, "history", fit_result))) < 1:
        raise TypeError(f"fit_result must be a FitResult or a loss history array, got {fit_result!r:.60}.")
    ax = _axes(ax)
    hist = np.asarray(getattr(fit_result, "history", fit_result))
    kwargs.setdefault("lw", 0.8)
    kwargs.setdefault("alpha", 0.7)
    ax.plot(np.arange(hist.shape[0]), hist, **kwargs)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return ax


def parameter_spread(fit_result, truth=None, *, ax=None, **kwargs):
    """Each start's best value of each fitted field, relative to `truth` (or to the best fit).

    **Arguments:** `fit_result`: `FitResult`; `truth`: `HHParams` or None; `ax`; `**kwargs` to
    ``ax.scatter``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.parameter_spread(res, truth=HHParams.hh1952())``.
    """
    _check_kind("fit_result", fit_result, "a FitResult (fit.optimize)", "params", "space")
    ax = _axes(ax)
    ref = fit_result.params if truth is None else truth
    names = fit_result.space.names
    for i, n in enumerate(names):
        v = np.asarray(getattr(fit_result.best_params, n)) / float(getattr(ref, n)) - 1.0
        ax.scatter(np.full(v.shape, i) + np.linspace(-0.15, 0.15, v.size), 100 * v, s=12, **kwargs)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("relative error (%)" if truth is not None else "relative to best (%)")
    return ax
