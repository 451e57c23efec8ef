"""Fitting the membrane area of a whole-cell recording, through the capacitance.

A whole-cell current ``I_pA`` drives the membrane as the density ``100·I_pA/A`` µA/cm² (A in
µm²). With the specific capacitance fixed (C = 1 µF/cm²), scaling the area by k is the same
model as keeping a reference area ``A_ref`` and dividing C and every conductance by k: with
``I_ref = 100·I_pA/A_ref``,

    (A/A_ref)·dV/dt = I_ref − (A/A_ref)·Σ g·(...)

so fitting C together with the conductances against ``I_ref`` fits the area: ``A = C_fit·A_ref``
and the densities are ``g = g_fit/C_fit``. No new parameter or objective is needed (the fitted
field is ``C`` of a `ParamSpace`); `estimate_area` gives ``A_ref`` from the capacitive jump of
dV/dt at the stimulus' steps, and `fitted_area` converts the fit back.
"""

import math

import numpy as np

from .._params import HHParams
from ._data import PF_PER_UM2, Recording

CONDUCTANCES = ("gNa", "gK", "gL")
"""The conductance densities rescaled by `fitted_area`."""


def estimate_area(recording: Recording, *, window_ms: float = 1.0) -> float:
    """The membrane area, µm², from the jumps of dV/dt where the injected current steps.

    At a step ΔI of the whole-cell current the ionic currents have not moved yet, so dV/dt
    jumps by ``ΔI/C_total``: ``C_total = ΔI/Δ(dV/dt)`` (pA/(mV/ms) = pF), and the area at
    1 µF/cm² is ``C_total/0.01`` µm². The slopes are least-squares fits over `window_ms` before
    (a line) and after (a parabola) each step that follows a steady current and a quiet
    voltage (no spike in the window before); the median over the steps of every sweep is
    returned. A first guess (typically 10–30 % high: the ionic currents bend the slope after the
    step): fit the area for the answer.

    **Arguments:** `recording`: a `Recording` with `I_pA` (whole-cell current, pA);
    `window_ms`: ms, default 1.0.

    **Returns:** the area, µm² (float).

    **Example:** ``a = estimate_area(load_nwb("cell.nwb")); rec.with_area(a)``.
    """
    if not isinstance(recording, Recording) or recording.I_pA is None:
        raise ValueError("estimate_area: needs a Recording with a whole-cell current (I_pA).")
    t = recording.t
    dt = float(np.median(np.diff(t)))
    w = max(3, round(window_ms / dt))
    V = recording.V.reshape(t.size, -1)
    I = recording.I_pA.reshape(t.size, -1)
    out = []
    for j in range(V.shape[1]):
        dI = np.diff(I[:, j])
        big = float(np.max(np.abs(dI))) if dI.size else 0.0
        if big == 0.0:
            continue
        for k in np.flatnonzero(np.abs(dI) > 0.5 * big) + 1:  # I changes between samples k-1 and k
            if k - w < 0 or k + w > t.size:
                continue
            if np.any(dI[k - w:k - 1] != 0):  # only steps from a steady current (onsets from rest)
                continue
            if np.ptp(V[k - w:k, j]) > 10.0:  # not during a spike: the slope before is meaningless
                continue
            before = np.polyfit(t[k - w:k] - t[k], V[k - w:k, j], 1)[0]
            after = np.polyfit(t[k:k + w] - t[k], V[k:k + w, j], 2)[1]
            jump = after - before
            dIk = I[k, j] - I[k - 1, j]
            if jump * dIk > 0:
                out.append(dIk / jump / PF_PER_UM2)
    if not out:
        raise ValueError("estimate_area: no step of the current with a clear jump of dV/dt; give the area.")
    return float(np.median(out))


def fitted_area(params: HHParams, *, reference_area_um2: float) -> tuple[HHParams, float]:
    """Densities at C = 1 µF/cm² and the membrane area, from a fit of C against ``I_ref``.

    **Arguments:** `params`: fitted `HHParams` whose `C` was fitted with the current density
    taken for `reference_area_um2` (µm², > 0).

    **Returns:** ``(params, area_um2)``: `params` with ``C = 1`` and gNa, gK, gL divided by the
    fitted C (mS/cm²), and ``area_um2 = C_fit·reference_area_um2``.

    **Example:** ``p, area = fitted_area(res.params, reference_area_um2=a_ref)``.
    """
    if not isinstance(params, HHParams):
        raise TypeError(f"fitted_area: params must be an HHParams, got {type(params).__name__}.")
    if isinstance(reference_area_um2, bool) or not isinstance(reference_area_um2, (int, float)) \
            or not math.isfinite(reference_area_um2) or reference_area_um2 <= 0:
        raise ValueError(f"fitted_area: reference_area_um2 must be a positive finite number (um^2), "
                         f"got {reference_area_um2!r}.")
    c = params.C
    scaled = {g: getattr(params, g) / c for g in CONDUCTANCES}
    area = c * float(reference_area_um2)
    return params.replace(C=c / c, **scaled), (float(area) if np.ndim(area) == 0 else np.asarray(area))
