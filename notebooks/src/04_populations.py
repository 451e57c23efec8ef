# %% [markdown]
# # 04 · Populations
#
# The BrainState tutorial (seed 003): ten HH neurons driven by random currents — voltage
# traces, spike raster, firing rates — and then a population of 10⁵ neurons with heterogeneous
# sodium conductance, timed.

# %%
# Sizes of this notebook (change them freely).
N_SMALL = 10                  # neurons in the tutorial's population
DURATION = 100.0              # ms
DT = 0.01                     # ms
I_RANGE = (1.0, 10.0)         # µA/cm², uniform random current, redrawn every step
SEED = 42
N_LARGE = 100_000             # neurons in the large population
LARGE_DURATION = 100.0        # ms
LARGE_DT = 0.05               # ms (notebook 03: spike times within ~0.2 ms after 200 ms)
LARGE_CURRENT = 10.0          # µA/cm²
GNA_RANGE = (30.0, 180.0)     # mS/cm², uniform spread of gNa in the large population

# %%
import os
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

import hh_jax
import hh_jax.plot

print("hh_jax", hh_jax.__version__, "| jax", jax.__version__, "| device", jax.devices()[0],
      "| CPU cores", os.cpu_count())
params = hh_jax.HHParams()  # the tutorial's parameters (the BrainPy defaults)
key_small, key_gna = jax.random.split(jax.random.key(SEED))

# %% [markdown]
# ## Ten neurons with random input currents
#
# The tutorial draws `brainstate.random.uniform(1., 10., times.shape)`: a fresh current in
# [1, 10] µA/cm² at every 0.01 ms step, and starts every neuron at −65 mV with its gates at
# steady state (hh_jax's default initial state). Note that `times.shape` gives **one** sequence,
# shared by all ten neurons — which is why the tutorial's ten neurons all report the same count.
# We give each neuron its own sequence (a time × neurons array in `Sampled`); the count is the
# same because the current is redrawn so fast that only its mean, 5.5 µA/cm², matters.

# %%
n_steps = round(DURATION / DT)
currents = jax.random.uniform(key_small, (n_steps, N_SMALL), minval=I_RANGE[0], maxval=I_RANGE[1])
stimulus = hh_jax.Sampled(currents, dt=DT)

start = time.perf_counter()
small = hh_jax.simulate(params, stimulus, duration=DURATION, dt=DT, record=("V",))
small.V.block_until_ready()
print(f"simulated in {time.perf_counter() - start:.2f} s (including compilation)")

counts = np.asarray(small.spike_count)
print("spike counts per neuron:", counts)
print(f"average firing rate: {counts.mean() / (DURATION / 1000):.1f} Hz")

shared = hh_jax.simulate(params, hh_jax.Sampled(currents[:, 0], dt=DT), duration=DURATION, dt=DT,
                         y0=hh_jax.steady_state_at(-65.0, shape=N_SMALL), record=())
print("the tutorial's recipe (one sequence for all):", np.asarray(shared.spike_count))

# %%
fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
for i, ax in enumerate(axes):
    hh_jax.plot.voltage(small, ax=ax, neurons=[i], threshold=float(params.V_th), lw=1.2)
    ax.set_ylabel(f"V{i} (mV)")
    ax.set_xlabel("")
    ax.grid(True, alpha=0.3)
axes[-1].set_xlabel("time (ms)")
fig.suptitle("Hodgkin-Huxley neuron activity (first three neurons)")
plt.tight_layout()
plt.show()

# %%
fig, (ax_r, ax_h) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
hh_jax.plot.raster(small, ax=ax_r)
ax_r.set_title("spike raster")
ax_r.grid(True, alpha=0.3, axis="x")
ax_h.bar(np.arange(N_SMALL), counts / (DURATION / 1000), color="tab:gray")
ax_h.set_xlabel("neuron")
ax_h.set_ylabel("firing rate (Hz)")
ax_h.set_title("rates")
plt.tight_layout()
plt.show()

# %% [markdown]
# About six spikes per neuron in 100 ms (≈ 60 Hz), as the tutorial reports. The spikes are not
# all aligned: each neuron's own noise shifts its spikes by a fraction of a millisecond.
#
# ## 10⁵ neurons with heterogeneous gNa
#
# A heterogeneous population is just arrays in the parameter fields. We record no traces
# (`record=()`) and only count spikes (`max_spikes=0`), so memory is a few arrays of N numbers
# whatever the duration. The time below includes compilation (about a second); `benchmarks/`
# measures throughput properly (compiled once, median of repeats).

# %%
gNa = jax.random.uniform(key_gna, (N_LARGE,), minval=GNA_RANGE[0], maxval=GNA_RANGE[1])
big_params = hh_jax.HHParams(gNa=gNa)

start = time.perf_counter()
big = hh_jax.simulate(big_params, LARGE_CURRENT, duration=LARGE_DURATION, dt=LARGE_DT,
                      record=(), max_spikes=0)
big.spike_count.block_until_ready()
elapsed = time.perf_counter() - start
steps = round(LARGE_DURATION / LARGE_DT)
print(f"{N_LARGE} neurons x {steps} steps in {elapsed:.2f} s including compilation: "
      f"{N_LARGE * steps / elapsed:.3g} neuron-steps per second on {jax.devices()[0]}")

# %%
rates = np.asarray(big.spike_count) / (LARGE_DURATION / 1000)
g = np.asarray(gNa)
edges = np.linspace(*GNA_RANGE, 25)
which = np.digitize(g, edges) - 1
mean_rate = np.array([rates[which == k].mean() for k in range(len(edges) - 1)])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.plot(0.5 * (edges[1:] + edges[:-1]), mean_rate, "o-")
ax1.set_xlabel("gNa (mS/cm²)")
ax1.set_ylabel("mean firing rate (Hz)")
ax1.set_title(f"I = {LARGE_CURRENT:g} µA/cm², {LARGE_DURATION:g} ms")
hh_jax.plot.rate_histogram(big, ax=ax2, bins=np.arange(-5, rates.max() + 15, 10), color="tab:gray")
ax2.set_yscale("log")
ax2.set_title(f"{N_LARGE} neurons")
plt.tight_layout()
plt.show()
counts_big = np.asarray(big.spike_count)
print(f"silent: {np.sum(counts_big == 0)} neurons (gNa up to {g[counts_big == 0].max():.1f} mS/cm²)")
print(f"one spike only: {np.sum(counts_big == 1)} neurons "
      f"(gNa {g[counts_big == 1].min():.1f}-{g[counts_big == 1].max():.1f} mS/cm²)")
print(f"repetitive: {np.sum(counts_big > 1)} neurons (gNa from {g[counts_big > 1].min():.1f} mS/cm²)")

# %% [markdown]
# Three regimes: with too little sodium conductance the neuron never spikes; in a middle band it
# fires once at onset and then settles to a depolarised steady state (the "10 Hz" bar is that
# single spike in 100 ms); above a critical gNa it fires repetitively, faster for larger gNa.
# Rates come in steps of 10 Hz because a 100 ms run counts whole spikes. On a GPU the same cell
# runs unchanged; increase `N_LARGE` to 10⁶ or more there.
