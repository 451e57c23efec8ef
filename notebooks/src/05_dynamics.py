# %% [markdown]
# # 05 · Dynamics of the HH neuron: rest, Hopf bifurcations, limit cycles, f-I curve
#
# The full 4-D Hodgkin–Huxley model analysed with `hh_jax.analysis`: the resting state and its
# eigenvalues, the Hopf bifurcations as the injected current grows, the periodic orbits found by
# shooting, the f-I curve with its minimum rate and bistability, and the (V, n) projection — all
# differentiable (implicit-function-theorem gradients).

# %%
# Sizes of this notebook (change them freely). One neuron, `hh1952` preset, float64.
I_MAX = 200.0                       # µA/cm², end of the equilibrium branch
N_BRANCH = 201                      # currents on the equilibrium branch (steps of 1 µA/cm²)
CYCLE_CURRENTS = (10.0, 155.0, 24.0)  # µA/cm², np.arange for the shooting continuation (upwards)
CYCLE_DOWN = (8.0, 6.3)             # µA/cm², continued downwards towards the fold of cycles
FI_MAX = 40.0                       # µA/cm², f-I curve from 0 to FI_MAX
N_FI = 41                           # currents on the f-I curve (each simulated twice)
TRANSIENT = 200.0                   # ms, discarded before the rate is measured
WINDOW = 200.0                      # ms, rate measurement window (dt = 0.01 ms)
PHASE_CURRENT = 10.0                # µA/cm², current of the (V, n) projection
PHASE_DURATION = 60.0               # ms, length of each trajectory in the projection

# %%
import time

import jax

jax.config.update("jax_enable_x64", True)  # the analysis wants float64

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import hh_jax
import hh_jax.analysis as A
import hh_jax.plot as hp

t_start = time.perf_counter()
p = hh_jax.HHParams.hh1952()

# %% [markdown]
# ## Rest and its eigenvalues
#
# Newton's method (Optimistix) on the equilibrium equation; the Jacobian by autodiff of the vector
# field. Two real negative eigenvalues and a damped complex pair: a stable focus. The derivative
# of the resting voltage with respect to a parameter comes from the implicit function theorem,
# not from differentiating through Newton's iterations.

# %%
rest = hh_jax.equilibrium(p)
s = A.stability(p, rest)
print(f"V_rest = {float(rest.V):.4f} mV; class: {s.name}")
print("eigenvalues (1/ms):", np.round(np.asarray(s.eigenvalues), 4))
# jax.jit: the gradient compiles as one program instead of running op by op.
dV_dgL = jax.jit(jax.grad(lambda gL: hh_jax.equilibrium(p.replace(gL=gL)).V))(jnp.asarray(0.3))
print(f"dV_rest/dgL = {float(dV_dgL):.4f} mV per mS/cm^2 (implicit function theorem)")

# %% [markdown]
# ## Hopf bifurcations and the cycle amplitude
#
# The equilibrium branch is continued in I (warm-started Newton); the complex pair crosses the
# imaginary axis twice. Each crossing is refined by a root find on Re λ(I) = 0, which is itself
# differentiable: `jax.grad(lambda gK: A.hopf_current(p.replace(gK=gK), hopf[0]))(36.0)` gives
# `d I_Hopf / d gK` (checked against finite differences in the tests). The stable periodic orbits
# (V max / min) come from shooting: Newton on the periodic boundary-value problem with the period
# unknown (Diffrax, Tsit5 at rtol 1e-10), continued up from 10 µA/cm² and down towards the fold
# of cycles.

# %%
I = np.linspace(0.0, I_MAX, N_BRANCH)
branch = A.equilibrium_branch(p, I)
hopf = A.hopf_points(p, I_min=0.0, I_max=I_MAX, num=N_BRANCH)  # reuses the branch compilation
print("Hopf points (uA/cm^2):", np.round(np.asarray(hopf), 4))
up = A.cycle_branch(p, np.arange(*CYCLE_CURRENTS))
down = A.cycle_branch(p, list(CYCLE_DOWN), guess=up.guess(0))  # towards the fold of cycles
cycles = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([b[::-1], a]), up, down)
print("stable cycles found at I =", np.round(np.asarray(cycles.I), 2), "uA/cm^2")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
hp.bifurcation(branch, cycles=cycles, hopf=hopf, ax=ax1)
ax1.set_title("equilibrium branch, Hopf points, stable cycle V max / min")
hp.spectrum(branch.eigenvalues[::5], ax=ax2, c=np.repeat(I[::5], 4), s=10, cmap="viridis")
ax2.set_title("eigenvalues along the branch (colour: I)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## f-I curve: minimum rate, bistability, depolarisation block
#
# Simulations vmapped over the currents (TRANSIENT = 200 ms discarded, rate over the next
# WINDOW = 200 ms), from rest at 0 µA/cm² (a current step) and from the equilibrium of each
# current. Between the fold of cycles (≈ 6.26 µA/cm²) and the first Hopf point both a quiet
# equilibrium and a spike train are stable: firing starts at a non-zero *minimum rate*, and
# whether a neuron fires depends on where it starts. At large currents the spikes shrink below the
# threshold V_th = 20 mV (depolarisation block); the cycle period (line) continues the small
# oscillations.

# %%
If = np.linspace(0.0, FI_MAX, N_FI)
from_rest = A.fi_curve(p, If, start=A.FromHolding(), transient=TRANSIENT, window=WINDOW)
from_eq = A.fi_curve(p, If, start=A.FromEquilibrium(), transient=TRANSIENT, window=WINDOW)
print(f"from rest: onset {from_rest.onset()} uA/cm^2, minimum rate {from_rest.minimum_rate():.1f} Hz, "
      f"block from {from_rest.block_onset()} uA/cm^2")
print(f"from the equilibrium: onset {from_eq.onset()} uA/cm^2")
ax = hp.fi(from_rest, label="simulation, from rest (step)")
hp.fi(from_eq, ax=ax, label="simulation, from the equilibrium", marker="x", ls="none")
hp.fi(cycles, ax=ax, label="1000 / cycle period", marker="", color="k", lw=1)
ax.axvspan(float(cycles.I.min()), float(hopf[0]), color="0.9", label="bistable")
ax.legend(fontsize="small")
ax.set_xlim(0, FI_MAX)
plt.show()

# %% [markdown]
# A current step from rest fires from a lower current than a neuron that starts at its own
# equilibrium: the step's kick carries the state across the unstable cycle into the basin of the
# spike train, while a neuron sitting at the (still stable) equilibrium stays quiet up to the
# Hopf point — and a little beyond it on this grid: at 10 µA/cm² the equilibrium is unstable, but
# only weakly (Re λ ≈ 0.004 /ms, an e-folding time of ~240 ms), so a neuron started exactly on it
# has not yet left it within the TRANSIENT + WINDOW = 400 ms simulated. (The bistable band is
# shaded from the lowest current where shooting found a cycle, 6.3 µA/cm², to the Hopf point.)
#
# ## The (V, n) projection
#
# Trajectories of the 4-D flow at I = 10 µA/cm² (just above the first Hopf point) projected on
# (V, n), with the limit cycle from shooting and the (unstable) equilibrium. Projected trajectories
# may cross: this is a view of the 4-D flow, not a planar system.

# %%
y0 = hh_jax.steady_state_at(jnp.array([-75.0, -65.0, -55.0, -30.0]))
pp = A.phase_plane(p, PHASE_CURRENT, y0, duration=PHASE_DURATION)
k = int(np.argmin(np.abs(np.asarray(cycles.I) - PHASE_CURRENT)))
cycle = jax.tree_util.tree_map(lambda x: x[k], cycles.paths)
ax = hp.phase_portrait(pp, cycle=cycle)
ax.set_title(f"I = {float(cycles.I[k]):g} µA/cm²: cycle period {float(cycles.period[k]):.3f} ms "
             f"({float(cycles.frequency[k]):.2f} Hz)")
plt.show()
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
