# %% [markdown]
# # 01 · Quick start
#
# The two examples from BrainPy's `brainpy.dyn.HH` documentation (seed 002), written with
# hh_jax: two neurons under a constant current, then two neurons driven by pulse trains plus
# Gaussian noise.

# %%
# Sizes of this notebook (change them freely).
N_NEURONS = 2            # both examples use a group of two neurons
DT = 0.01                # integration step, ms
DURATION_1 = 200.0       # example 1, ms
CURRENT_1 = 10.0         # example 1, µA/cm²
DURATION_2 = 2000.0      # example 2, ms
NOISE_DT = 0.1           # example 2: noise bin width, ms (BrainPy's default dt)
NOISE_SIGMA = 3.0        # example 2: noise standard deviation per bin, µA/cm²
SEED = 0

# %%
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

import hh_jax
import hh_jax.plot

print("hh_jax", hh_jax.__version__, "| jax", jax.__version__, "| device", jax.devices()[0])

# %% [markdown]
# ## Example 1: two neurons at I = 10 µA/cm² for 200 ms
#
# BrainPy:
#
# ```python
# group = bp.dyn.HH(2)
# runner = bp.dyn.DSRunner(group, monitors=['V'], inputs=('input', 10.))
# runner.run(200.)
# ```
#
# `HHParams()` holds exactly BrainPy's defaults (ENa 50, gNa 120, EK −77, gK 36,
# EL −54.387, gL 0.03, C 1, V_th 20), and `brainpy_initial_state` is BrainPy's initializer
# (V uniform in [−70, −60) mV, m 0.5, h 0.6, n 0.32) with an explicit PRNG key, so the run is
# reproducible. The default stepper is the *staggered* exponential Euler (notebook 03 shows
# why it, not BrainPy's `exp_auto`, is the default).

# %%
params = hh_jax.HHParams()            # == HHParams.brainpy()
key_init, key_noise = jax.random.split(jax.random.key(SEED))
y0 = hh_jax.brainpy_initial_state(key_init, N_NEURONS)
print("initial V (mV):", np.round(np.asarray(y0.V), 2))

start = time.perf_counter()
r1 = hh_jax.simulate(params, CURRENT_1, duration=DURATION_1, dt=DT, y0=y0)
r1.V.block_until_ready()
print(f"simulated in {time.perf_counter() - start:.2f} s (including compilation)")
print("spike counts:", np.asarray(r1.spike_count), "| rates (Hz):", np.asarray(r1.spike_count) / (DURATION_1 / 1000))

# %%
ax = hh_jax.plot.voltage(r1, threshold=float(params.V_th))
ax.figure.set_size_inches(9, 3.5)
ax.set_title(f"Two HH neurons, I = {CURRENT_1:g} µA/cm²")
plt.show()

# %% [markdown]
# Both neurons fire at once: BrainPy's initial m = 0.5 is far above its resting value
# m∞(−65 mV) ≈ 0.05, so the sodium current is switched on from the first step. That common
# kick nearly synchronises the two neurons, which then follow the same limit cycle (the two
# traces overlap; their spike times differ by about 0.01 ms, see below).
#
# All spike times are available without recording any trace, interpolated within the step:

# %%
table = r1.spike_table()  # columns: neuron, time (ms)
print("neuron  time (ms)")
for neuron, t in table[:6]:
    print(f"{int(neuron):6d}  {t:9.3f}")
isi = np.diff(table[table[:, 0] == 0, 1])
print("inter-spike intervals of neuron 0 (ms):", np.round(isi, 3))
print(f"steady period {isi[-1]:.3f} ms = {1000 / isi[-1]:.1f} Hz")

# %% [markdown]
# ## Example 2: pulse trains plus Gaussian noise, 2 s, stacked traces
#
# BrainPy:
#
# ```python
# I1 = bp.inputs.spike_input(sp_times=[500., 550., 1000, 1030, 1060, 1100, 1200],
#                            sp_lens=5, sp_sizes=5., duration=2000)
# I2 = bp.inputs.spike_input(sp_times=[600., 900, 950, 1500], sp_lens=5, sp_sizes=5.,
#                            duration=2000)
# I1 += bp.math.random.normal(0, 3, size=I1.shape)
# I2 += bp.math.random.normal(0, 3, size=I2.shape)
# I = bp.math.stack((I1, I2), axis=-1)
# ```
#
# In hh_jax each input is a small object: `PulseTrain` is `spike_input`, `Stack` puts one
# stimulus per neuron, and `WhiteNoise` draws a fresh N(0, σ²) value per bin from an explicit
# key. BrainPy's noise array has one value per *BrainPy step*, 0.1 ms by default; we keep that
# bin width (`NOISE_DT`) while integrating at `DT` = 0.01 ms, so the input is the same random
# process as in the seed. (Per-step white noise of fixed σ is *not* dt-independent: at
# 0.01 ms bins its effect on V would be √10 times weaker. `WhiteNoise(..., scale_with_dt=True)`
# gives a dt-independent intensity.)

# %%
pulses = hh_jax.Stack(
    [
        hh_jax.PulseTrain([500.0, 550.0, 1000.0, 1030.0, 1060.0, 1100.0, 1200.0], widths=5.0, amplitudes=5.0),
        hh_jax.PulseTrain([600.0, 900.0, 950.0, 1500.0], widths=5.0, amplitudes=5.0),
    ]
)
noise = hh_jax.WhiteNoise(key_noise, sigma=NOISE_SIGMA, dt=NOISE_DT, shape=N_NEURONS)
stimulus = pulses + noise

start = time.perf_counter()
r2 = hh_jax.simulate(params, stimulus, duration=DURATION_2, dt=DT, y0=y0, record=("V", "I"), record_every=10)
r2.V.block_until_ready()
print(f"{int(DURATION_2 / DT)} steps simulated in {time.perf_counter() - start:.2f} s (including compilation)")
print("spike counts:", np.asarray(r2.spike_count))
for neuron, t in r2.spike_table():
    print(f"  neuron {int(neuron)} spikes at {t:7.2f} ms")

# %% [markdown]
# The figure of the seed: neuron 1's trace is shifted up by 130 mV, no ticks. Below it, the
# injected current of each neuron (recorded with `record=("V", "I")`, every 10th step).

# %%
fig, (ax_v, ax_i) = plt.subplots(2, 1, figsize=(9, 5), gridspec_kw={"height_ratios": [3, 1.4]})
hh_jax.plot.stacked(r2, ax=ax_v, offset=130.0, linewidth=0.8)
ax_v.set_xlim(10, DURATION_2)
ax_v.set_title("Seed 002, example 2: pulses (5 ms × 5 µA/cm²) + noise (σ = 3 µA/cm²)")
t = np.asarray(r2.t)
I = np.asarray(r2.I)
ax_i.plot(t, I[:, 0], lw=0.3, label="I to neuron 0")
ax_i.plot(t, I[:, 1] + 30, lw=0.3, label="I to neuron 1 (+30)")
ax_i.set_ylabel("I (µA/cm²)")
ax_i.set_xlabel("time (ms)")
ax_i.set_xlim(10, DURATION_2)
ax_i.legend(loc="upper right", fontsize="small")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each 5 ms pulse of 5 µA/cm² fires one spike, a few ms after its onset (see the spike table
# above), while the noise alone only makes the membrane flicker by a few mV. The spike at
# t ≈ 0.1 ms is again the initial-state kick (m = 0.5); the seed's `plt.xlim(10, 2000)` hides
# it, and so does ours. Changing `SEED` changes the noise, not the pattern.
#
# **Next:** notebook 02 dissects one spike, 03 compares integration schemes and step sizes,
# 04 simulates populations.
