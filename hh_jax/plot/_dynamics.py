"""Plots of the dynamics analysis: bifurcation diagram, f-I curves, eigenvalues, phase plane.

Matplotlib is imported lazily; every function takes ``ax=None``, passes ``**kwargs`` to the main
matplotlib call, and returns the Axes.
"""

import numpy as np

from ._traces import _axes, _check_kind, _numeric


def bifurcation(branch, *, cycles=None, hopf=None, ax=None, **kwargs):
    """Bifurcation diagram in the injected current: equilibrium V (stable solid, unstable
    dashed), the periodic orbits' V max/min, and the Hopf points.

    **Arguments:**

    - `branch`: an `hh_jax.analysis.EquilibriumBranch`.
    - `cycles`: optional `hh_jax.analysis.CycleBranch` (drawn as V max and V min).
    - `hopf`: optional 1-D array of Hopf currents, µA/cm² (drawn as dots on the branch).
    - `ax`: matplotlib Axes or None.
    - `**kwargs`: passed to the equilibrium lines' ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.bifurcation(A.equilibrium_branch(p, I), hopf=A.hopf_points(p))``.
    """
    _check_kind("branch", branch, "an EquilibriumBranch (analysis.equilibrium_branch)", "I", "state", "stable")
    ax = _axes(ax)
    I = np.asarray(branch.I)
    V = np.asarray(branch.state.V)
    stable = np.asarray(branch.stable)
    color = kwargs.pop("color", "tab:red")
    for mask, style, label in ((stable, "-", "stable equilibrium"), (~stable, "--", "unstable equilibrium")):
        Vm = np.where(mask, V, np.nan)
        ax.plot(I, Vm, style, color=color if style == "-" else "k", label=label, **kwargs)
    if cycles is not None:
        Ic = np.asarray(cycles.I)
        st = np.asarray(cycles.stable)
        for arr, lab in ((cycles.V_max, "stable cycle: V max / min"), (cycles.V_min, None)):
            a = np.asarray(arr)
            ax.plot(Ic, np.where(st, a, np.nan), "-", color="tab:green", label=lab)
            if (~st).any():
                ax.plot(Ic, np.where(~st, a, np.nan), "-", color="tab:blue",
                        label="unstable cycle" if lab else None)
    if hopf is not None and len(np.asarray(hopf)):
        h = np.asarray(hopf)
        Vh = np.interp(h, I, V)
        ax.plot(h, Vh, "o", color="tab:purple", label="Hopf points", zorder=5)
    ax.set_xlabel("I (µA/cm²)")
    ax.set_ylabel("V (mV)")
    ax.legend(loc="best", fontsize="small")
    return ax


def fi(curve, *, ax=None, label=None, **kwargs):
    """Firing rate (Hz) against current (µA/cm²) from an `hh_jax.analysis.FICurve`, or any
    object with `I` and `rate` / `frequency` fields (e.g. a `CycleBranch`).

    **Arguments:** `curve`; `ax`; `label` for the legend; `**kwargs` to ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.fi(A.fi_curve(p, np.linspace(0, 30, 61)))``.
    """
    _check_kind("curve", curve, "an FICurve (analysis.fi_curve)", "I")
    if not (hasattr(curve, "rate") or hasattr(curve, "frequency")):
        raise TypeError(f"curve must be an FICurve (analysis.fi_curve), got {type(curve).__name__}.")
    ax = _axes(ax)
    rate = curve.rate if hasattr(curve, "rate") else curve.frequency
    kwargs.setdefault("marker", ".")
    ax.plot(np.asarray(curve.I), np.asarray(rate), label=label, **kwargs)
    ax.set_xlabel("I (µA/cm²)")
    ax.set_ylabel("firing rate (Hz)")
    if label is not None:
        ax.legend(loc="best", fontsize="small")
    return ax


def spectrum(w, *, ax=None, label=None, **kwargs):
    """Eigenvalues (1/ms) in the complex plane, with the imaginary axis marked.

    **Arguments:** `w`: complex array (any shape, e.g. ``EquilibriumBranch.eigenvalues``);
    `ax`; `label`; `**kwargs` to ``ax.scatter``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.spectrum(A.stability(p, y).eigenvalues)``.
    """
    _numeric("w (eigenvalues)", w)
    ax = _axes(ax)
    w = np.asarray(w).ravel()
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.scatter(w.real, w.imag, label=label, **kwargs)
    ax.set_xlabel("Re λ (1/ms)")
    ax.set_ylabel("Im λ (1/ms)")
    if label is not None:
        ax.legend(loc="best", fontsize="small")
    return ax


def phase_portrait(pp, *, cycle=None, ax=None, nullclines: bool = True, **kwargs):
    """The (V, n) projection: trajectories, optional limit cycle, equilibrium, nullclines.

    **Arguments:**

    - `pp`: an `hh_jax.analysis.PhasePlane`.
    - `cycle`: optional `HHState` path of a periodic orbit (`hh_jax.analysis.cycle_path`).
    - `ax`; `nullclines`: draw the reduced nullclines (default True);
    - `**kwargs`: passed to the trajectories' ``ax.plot``.

    **Returns:** the Axes.

    **Example:** ``hh_jax.plot.phase_portrait(A.phase_plane(p, 10.0, y0s))``.
    """
    _check_kind("pp", pp, "a PhasePlane (analysis.phase_plane)", "V", "n", "V_eq")
    ax = _axes(ax)
    V, n = np.asarray(pp.V), np.asarray(pp.n)
    kwargs.setdefault("lw", 0.8)
    kwargs.setdefault("alpha", 0.7)
    for k in range(V.shape[1]):
        ax.plot(V[:, k], n[:, k], label="trajectories" if k == 0 else None, **kwargs)
    if nullclines:
        ax.plot(np.asarray(pp.V_grid), np.asarray(pp.n_nullcline), ":", color="0.4", label="n-nullcline (n = n∞(V))")
        ax.plot(np.asarray(pp.V_grid), np.asarray(pp.V_nullcline), "-.", color="0.4",
                label="V-nullcline (m = m∞, h = h_eq)")
    if cycle is not None:
        ax.plot(np.asarray(cycle.V), np.asarray(cycle.n), color="tab:green", lw=2.0, label="limit cycle")
    ax.plot(float(pp.V_eq), float(pp.n_eq), "o", color="k", label="equilibrium", zorder=5)
    ax.set_xlabel("V (mV)")
    ax.set_ylabel("n")
    ax.set_ylim(0.0, 1.0)
    ax.legend(loc="best", fontsize="small")
    return ax
