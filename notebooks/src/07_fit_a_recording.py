# %% [markdown]
# # 07 · Fitting a whole-cell recording from an NWB file
#
# A current-clamp recording as a rig stores it: several sweeps of a step protocol in an NWB file,
# voltages offset by a liquid-junction potential, the injected current in pA for the whole cell
# (area unknown). We load it in physical units with `hh_jax.fit.load_nwb`, fit gNa, gK, gL and
# the membrane area to all sweeps at once, and look at the fit sweep by sweep.

# %%
# Sizes of this notebook (change them freely).
CURRENTS = (-5.0, 5.0, 15.0)  # µA/cm², one step per sweep (5 ms to 25 ms)
SWEEPS = (12, 13, 14)         # the sweeps' numbers in the file
DURATION = 30.0               # ms per sweep
DT = 0.05                     # ms: 20 kHz sampling
AREA_UM2 = 2000.0             # µm², the cell's membrane area (20 pF): what the fit must find
LJP_MV = 8.0                  # mV, liquid-junction potential in the recorded voltage
NOISE_SIGMA = 0.3             # mV, recording noise
N_STARTS = 2                  # random starts, optimised together
FORCED_STEPS = 20             # Adam steps on the teacher-forced loss, then Levenberg–Marquardt

# %%
import os
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib.pyplot as plt
import numpy as np
import optax

import hh_jax
import hh_jax.fit as hf
import hh_jax.plot as hp

t_start = time.perf_counter()

# %% [markdown]
# ## A recording, written as NWB
#
# The "cell" is the 1952 squid axon membrane with an area of 2000 µm². We simulate the three
# sweeps, add noise and the junction potential, and store the whole-cell current (pA) and the
# voltage as NWB current-clamp sweeps (`hh_jax.fit.save_recording`: a `CurrentClampSeries` and a
# `CurrentClampStimulusSeries` per sweep, in volts and amperes with their conversion factors). The
# file says nothing about the area.

# %%
truth = hh_jax.HHParams.hh1952()
t = DT * np.arange(round(DURATION / DT) + 1)
density = np.where((t[:, None] >= 5.0) & (t[:, None] < DURATION - 5.0), np.array(CURRENTS), 0.0)  # [T, 3]
I_pA = density * AREA_UM2 / 100.0  # 1 µA/cm² on 1 µm² is 0.01 pA
clean = hh_jax.simulate(truth, hh_jax.Sampled(density, dt=DT, interpolation=hh_jax.LinearSamples()), duration=DURATION,
                        dt=DT, y0=hh_jax.equilibrium(truth))
noise = NOISE_SIGMA * np.random.default_rng(0).standard_normal(density.shape)
recorded = hf.Recording(t=t, V=np.asarray(clean.V) + noise + LJP_MV, I_pA=I_pA, sweeps=SWEEPS)
path = os.path.join(tempfile.mkdtemp(), "cell.nwb")
hf.save_recording(path, recorded)
print(f"{path}: {os.path.getsize(path) / 1024:.0f} kB, sweeps {SWEEPS}, steps of "
      f"{', '.join(f'{i:+.0f}' for i in I_pA.max(0) + I_pA.min(0))} pA")

# %% [markdown]
# ## Loading it in physical units
#
# `load_nwb` reads the sweeps' units from the file (V, A; conversion and offset; the sampling
# rate), subtracts the junction potential and stacks the sweeps: `V` is `[T, S]` mV, the layout of
# `TraceObjective`'s data (one protocol per column). Without an area the current stays whole-cell
# (`I_pA`); `load_nwb(..., area_um2=…)` or `capacitance_pf=…` (at 1 µF/cm²) would give the density.

# %%
rec = hf.load_nwb(path, sweeps=list(SWEEPS), liquid_junction_mV=LJP_MV)
print("V:", rec.V.shape, "mV;  I_pA:", rec.I_pA.shape, "pA;  I (density):", rec.I, ";  sweeps:", rec.sweeps)

# %% [markdown]
# ## Fitting the area too
#
# With C = 1 µF/cm², an area k times larger is the same model as a reference area with C and every
# conductance divided by k. So the area is fitted as C: `estimate_area` gives a reference area from
# the jumps of dV/dt at the current steps (ΔI/C_total), the current becomes a density for that
# area, and C joins the fitted fields (teacher-forced Adam steps bring the starts near the answer,
Levenberg–Marquardt finishes, as in notebook 06). `fitted_area` converts back: area = C_fit · reference, and
# g = g_fit / C_fit. (`hh-jax fit --data cell.nwb --sweeps 12,13,14 --fit-area` does the same.)

# %%
reference = hf.estimate_area(rec)
rec = rec.with_area(reference)
print(f"reference area from the capacitive jumps: {reference:.0f} µm² (truth {AREA_UM2:.0f})")

space = hf.ParamSpace(truth.replace(gNa=100.0, gK=30.0, gL=0.25), ("gNa", "gK", "gL", "C"))
stimulus = hh_jax.Sampled(rec.I, dt=DT, interpolation=hh_jax.LinearSamples())  # [T, 3]: one protocol per sweep
objective = hf.TraceObjective(stimulus, rec.V, dt=DT, y0=hh_jax.steady_state_at(rec.V[0]))
res = hf.optimize(objective.window(horizon=0.5), space, n_starts=N_STARTS, steps=FORCED_STEPS,
                  optimizer=optax.adam(0.05), key=jax.random.key(1), progress=False)
res = hf.polish(objective, res)  # Levenberg–Marquardt on the free-running residuals
params, area = hf.fitted_area(res.params, reference_area_um2=reference)
print(f"loss {float(res.loss):.4f} mV² (noise variance {NOISE_SIGMA ** 2:.2f})")
for name in ("gNa", "gK", "gL"):
    fit, true = float(getattr(params, name)), float(getattr(truth, name))
    print(f"  {name:3s} = {fit:8.4f} mS/cm²   (truth {true:g}: {100 * (fit / true - 1):+.2f} %)")
print(f"  area = {area:8.1f} µm²      (truth {AREA_UM2:g}: {100 * (area / AREA_UM2 - 1):+.2f} %)")

# %% [markdown]
# ## The fit, sweep by sweep

# %%
sim = objective.simulate(res.params)
fig, axes = plt.subplots(1, len(SWEEPS), figsize=(12, 3.4), sharey=True)
for j, (ax, k) in enumerate(zip(axes, rec.sweeps)):
    hp.fit_overlay(rec.t, rec.V, sim, ax=ax, trace=j)
    ax.set_title(f"sweep {k}: {rec.I_pA[:, j].max() + rec.I_pA[:, j].min():+.0f} pA")
fig.tight_layout()
plt.show()
residual = np.asarray(sim.V) - rec.V
print("rms residual per sweep (mV):", np.round(np.sqrt(np.mean(residual ** 2, axis=0)), 3))
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
