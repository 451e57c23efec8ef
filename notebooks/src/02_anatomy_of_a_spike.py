# %% [markdown]
# # 02 · Anatomy of a spike
#
# Parts 2–5 of the course notebook (seed 004) with the 1952 parameters: the fixed point at
# I = 0, repetitive spiking at I = 10 µA/cm², and the gates, conductances and currents through
# one spike — including why the sodium current dips near the spike's peak.

# %%
# Sizes of this notebook (change them freely).
DURATION = 100.0          # ms, as in the course (T0 = 100)
DT = 0.01                 # ms, as in the course
I_LOW = 0.0               # µA/cm², Part 2
I_HIGH = 10.0             # µA/cm², Parts 3-5
WINDOW = (42.0, 56.0)     # ms, the course's zoom on one spike

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

import hh_jax
import hh_jax.plot

params = hh_jax.HHParams.hh1952()
# The course's initial state: V = -70 mV, m = 0.05, h = 0.54, n = 0.34.
y0 = hh_jax.HHState(V=-70.0, m=0.05, h=0.54, n=0.34)
ALL = ("V", "m", "h", "n", "gNa", "gK", "gL", "INa", "IK", "IL")
print({f: float(getattr(params, f)) for f in hh_jax.HHParams.FIELDS})

# %% [markdown]
# ## The course's convention is ours shifted by 65 mV
#
# The course writes `gNa0*m**3*h*(ENa-(V+65))` with `ENa = 115`, `EK = -12`, `EL = 10.6`: its
# reversal potentials are measured *relative to rest*, while V itself is absolute. hh_jax uses
# absolute potentials throughout; the 1952 preset `HHParams.hh1952()` is the course's model
# with every reversal potential shifted by −65 mV:
#
# | quantity | course (relative to rest) | hh_jax `hh1952()` (absolute) |
# |---|---|---|
# | ENa | 115 mV | 50 mV |
# | EK | −12 mV | −77 mV |
# | EL | 10.6 mV | −54.387 mV (−54.4; the extra digits put rest exactly at −65) |
# | gNa, gK, gL | 120, 36, 0.3 mS/cm² | same |
# | rest | 0 mV | −64.996 mV |
#
# The course integrates with forward Euler (`stepper=hh_jax.Euler()` is the same scheme); we use
# hh_jax's default exponential Euler, which gives the same curves at this dt. Our currents are
# *outward positive*, `INa = gNa·m³h·(V − ENa)`; the course plots `gNa·m³h·(ENa − V)`, the
# mirror image.

# %% [markdown]
# ## Part 2: at I = 0 the dynamics approach a fixed point

# %%
low = hh_jax.simulate(params, I_LOW, duration=DURATION, dt=DT, y0=y0, record=ALL)
rest = hh_jax.equilibrium(params, I_LOW)

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
hh_jax.plot.voltage(low, ax=ax1, color="k")
ax1.axhline(float(rest.V), color="tab:gray", ls=":", label="fixed point")
ax1.legend(loc="lower right")
ax1.set_xlabel("")
hh_jax.plot.gates(low, ax=ax2)
ax1.set_title(f"I = {I_LOW:g} µA/cm²: relaxation to rest")
plt.tight_layout()
plt.show()

print("            V (mV)      m         h         n")
print("t = 100 ms  " + "  ".join(f"{float(getattr(low.final_state, k)):9.5f}" for k in "Vmhn"))
print("fixed point " + "  ".join(f"{float(getattr(rest, k)):9.5f}" for k in "Vmhn"))
print("spikes:", int(low.spike_count))

# %% [markdown]
# After 100 ms the state sits on the fixed point — a point in four-dimensional (V, m, h, n)
# space that `hh_jax.equilibrium` computes directly (a Newton solve of dV/dt = 0 with the gates
# at their steady states). The initial state is not at rest, so V first rises by ~5 mV
# (m and n relax faster than h) and then settles without spiking.
#
# ## Part 3: at I = 10 µA/cm² the model fires repetitively

# %%
high = hh_jax.simulate(params, I_HIGH, duration=DURATION, dt=DT, y0=y0, record=ALL)
spikes = np.asarray(high.spike_times)[: int(high.spike_count)]
period = np.diff(spikes)
t, V = np.asarray(high.t), np.asarray(high.V)
late = t > spikes[1]
print(f"{int(high.spike_count)} spikes at (ms):", np.round(spikes, 2))
print(f"period {period[-1]:.2f} ms ({1000 / period[-1]:.1f} Hz); peak {V[late].max():.1f} mV (first spike {V.max():.1f}); "
      f"after-hyperpolarisation minimum {V[late].min():.1f} mV")

ax = hh_jax.plot.voltage(high, color="k", threshold=float(params.V_th))
ax.figure.set_size_inches(8, 3)
ax.axvspan(*WINDOW, color="tab:orange", alpha=0.15, label="zoom below")
course = ax.secondary_yaxis("right", functions=(lambda v: v + 65.0, lambda u: u - 65.0))
course.set_ylabel("V + 65 (mV, course)")
ax.legend(loc="upper right", fontsize="small")
ax.set_title(f"I = {I_HIGH:g} µA/cm²: repetitive spiking")
plt.show()

# %% [markdown]
# ## Parts 3–5 through one spike: gates, conductances, currents (shared x-axes)

# %%
fig, axes = plt.subplots(4, 1, figsize=(8, 10), sharex=True)
hh_jax.plot.voltage(high, ax=axes[0], color="k")
hh_jax.plot.gates(high, ax=axes[1])
hh_jax.plot.conductance_traces(high, ax=axes[2])
hh_jax.plot.current_traces(high, ax=axes[3])
axes[0].secondary_yaxis("right", functions=(lambda v: v + 65.0, lambda u: u - 65.0)).set_ylabel("V + 65 (mV)")
for ax in axes[:-1]:
    ax.set_xlabel("")
axes[-1].set_xlim(*WINDOW)
axes[0].set_title("One spike: voltage, gates, conductances, currents (outward positive)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the panels top to bottom: **m** (fast) opens first and **gNa = 120·m³h** shoots up;
# the inward sodium current (negative here) drives the upstroke. **h** (slow) closes and **n**
# (slow) opens, so gNa falls while **gK = 36·n⁴** rises; the outward potassium current brings V
# down and below rest (the after-hyperpolarisation), from which V creeps back up until the next
# spike. The leak is a constant 0.3 mS/cm².
#
# ## Part 5: why does INa dip near the spike peak?
#
# The course asks about the small, transient decrease of the sodium current near 47 ms. The
# current is a product, `INa = gNa(t)·(V − ENa)`. Near the peak, V approaches ENa = 50 mV, so
# the *driving force* `ENa − V` collapses from ~115 mV at rest to ~20 mV — faster than the
# conductance is still growing. The current shrinks although the channels are wide open; once V
# turns down, the driving force grows again while gNa is only slowly inactivating, giving a
# second hump, and then inactivation (h) and the falling m shut the current off. Measured:

# %%
g_na, I_na = np.asarray(high.gNa), np.asarray(high.INa)
drive = float(params.ENa) - V
k_peak = int(np.argmax(np.where((t > WINDOW[0]) & (t < WINDOW[1]), V, -np.inf)))
inward = -I_na  # inward positive, as the course plots it
seg = np.arange(k_peak - 150, k_peak + 150)
d = np.diff(inward[seg])
maxima = seg[1:-1][(d[:-1] > 0) & (d[1:] <= 0)]   # local maxima of the inward current
minima = seg[1:-1][(d[:-1] < 0) & (d[1:] >= 0)]   # local minima
k_first = int(maxima[0])                            # first hump (upstroke)
k_dip = int(minima[minima > k_first][0])            # the dip
k_second = int(maxima[maxima > k_dip][0])           # second hump (downstroke)
k_gmax = int(seg[np.argmax(g_na[seg])])
for name, k in [("first INa maximum", k_first), ("INa dip", k_dip), ("V peak", k_peak),
                ("gNa maximum", k_gmax), ("second INa maximum", k_second)]:
    print(f"{name:19s} t = {t[k]:6.2f} ms  V = {V[k]:6.1f} mV  gNa = {g_na[k]:5.1f} mS/cm²  "
          f"ENa - V = {drive[k]:5.1f} mV  -INa = {inward[k]:6.1f} µA/cm²")

fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
axes[0].plot(t, g_na, color="tab:purple")
axes[0].set_ylabel("gNa·m³h (mS/cm²)")
axes[1].plot(t, drive, color="tab:blue")
axes[1].set_ylabel("ENa − V (mV)")
axes[2].plot(t, inward, color="tab:purple")
axes[2].set_ylabel("−INa (µA/cm², inward)")
axes[2].set_xlabel("time (ms)")
for ax in axes:
    for k, c in [(k_dip, "tab:red"), (k_peak, "k")]:
        ax.axvline(t[k], color=c, ls=":", lw=1)
axes[2].set_xlim(t[k_peak] - 1.2, t[k_peak] + 1.5)
axes[0].set_title("INa = conductance × driving force: red = INa dip, black = V peak")
plt.tight_layout()
plt.show()

# %% [markdown]
# The dip sits just before the voltage peak: the conductance is still *rising* (it peaks about
# 0.1 ms after V does), but the driving force is collapsing towards its minimum of ~20 mV, and the
# product falls. It is a driving-force effect, not a closing of channels. Note also that the
# largest sodium current flows on the *downstroke* (the second hump), when the driving force has
# recovered while the channels are not yet inactivated — at the same time as the large outward
# potassium current: the two partly cancel, which is why the HH spike is energetically
# wasteful.
