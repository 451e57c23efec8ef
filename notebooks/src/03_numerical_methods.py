# %% [markdown]
# # 03 · Numerical methods and the step size
#
# The student report (seed 001) integrates HH with RK4 at dt = 0.01 ms and finds that "changing
# the time step" breaks the figure; here we find out what actually went wrong, compare the
# staggered and simultaneous exponential Euler schemes, and measure the spike-time error of every
# stepper (and of one adaptive Diffrax solver) against a float64 reference.

# %%
# Sizes of this notebook (change them freely).
CURRENT = 10.0                      # µA/cm², as in seed 001
SEED_DURATION = 100.0               # ms, seed 001's figures
DURATION = 200.0                    # ms, for the spike-time errors
DTS = (0.1, 0.025, 0.01)            # ms, steps to compare (each dt and stepper compiles once)
REF_DT = 0.002                      # ms, RK4 reference step (float64)
SAMPLE = 0.05                       # ms, spacing of the recorded traces
TSIT5_TOL = 1e-8                    # rtol = atol of the adaptive Diffrax Tsit5 run

# %%
import jax

jax.config.update("jax_enable_x64", True)  # the whole notebook runs in float64

import diffrax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import hh_jax
import hh_jax.plot

params = hh_jax.HHParams()  # the seed's parameters (BrainPy defaults)


def run(stepper, dt, y0=None):
    """Simulate DURATION ms at CURRENT; traces every SAMPLE ms (or every step if dt > SAMPLE)."""
    every = max(1, round(SAMPLE / dt))
    return hh_jax.simulate(params, CURRENT, duration=DURATION, dt=dt, stepper=stepper, y0=y0,
                           record=("V", "m", "h", "n"), record_every=every, throw=False)


def spikes(result):
    return np.asarray(result.spike_times)[: int(result.spike_count)]

# %% [markdown]
# ## 1. Seed 001: RK4 at dt = 0.01 ms, and "the same" at 0.1 ms
#
# The report starts from V = m = h = n = 0 and integrates with `bp.odeint(method='rk4',
# dt=0.01)`. Here is that run (its first 100 ms), and the same model with RK4 at a step that
# is really 0.1 ms:

# %%
# jnp.zeros(()) rather than 0.0: a strongly typed array reuses the compilation of section 3.
zero = hh_jax.HHState(V=jnp.zeros(()), m=jnp.zeros(()), h=jnp.zeros(()), n=jnp.zeros(()))
rk_fine = run(hh_jax.RK4(), 0.01, y0=zero)
rk_coarse = run(hh_jax.RK4(), 0.1, y0=zero)
for label, r in [("0.01", rk_fine), ("0.1 ", rk_coarse)]:
    print(f"RK4 dt={label}: {int(r.spike_count)} spikes in {DURATION:g} ms, finite: {bool(r.finite)}")
V_coarse = np.asarray(rk_coarse.V)
if bool(rk_coarse.finite) and int(rk_coarse.spike_count) == int(rk_fine.spike_count):
    shift = np.max(np.abs(spikes(rk_coarse) - spikes(rk_fine)))
    print(f"RK4 dt=0.1 : spikes shifted by up to {shift:.3f} ms from dt=0.01")
states = hh_jax.HHState(V=rk_fine.V, m=rk_fine.m, h=rk_fine.h, n=rk_fine.n)
g = hh_jax.conductances(params, states)
g_total = np.asarray(g.gNa + g.gK + g.gL)  # mS/cm²; with C = 1 µF/cm², V's rate is g/C in 1/ms
print(f"largest total conductance {g_total.max():.1f} mS/cm² -> |lambda|*dt = {g_total.max() * 0.1:.1f} "
      "at dt = 0.1 ms (RK4 is stable for |lambda|*dt < 2.79)")

# %% [markdown]
# RK4 at a true 0.1 ms step is at the edge of its stability region: near each spike peak the
# total membrane conductance makes V's eigenvalue |λ| = g/C large enough that |λ|·dt passes RK4's
# limit of about 2.8 for a fraction of a millisecond. From the seed's initial state (all zeros)
# the run survives this with shifted spikes; from rest, in section 3, the same step ends in NaN
# (hh_jax's `simulate` raises on NaN unless `throw=False`, which we pass here to look at the
# results).
#
# But that is *not* what happened in the report. There, the integrator was created with
# `dt=0.01` and kept it; only the time axis changed to `arange(0, 100, 0.1)`. The loop therefore
# made 1000 steps of 0.01 ms — 10 ms of dynamics — and plotted them over 100 ms. We can
# reproduce that figure exactly: take the first 10 ms of the good run and stretch its time axis
# by 10.

# %%
t, V = np.asarray(rk_fine.t), np.asarray(rk_fine.V)
first10 = t <= 10.0
fig, axes = plt.subplots(3, 1, figsize=(8, 7.5))
axes[0].plot(t[t <= SEED_DURATION], V[t <= SEED_DURATION], "k")
axes[0].set_title("RK4, dt = 0.01 ms (seed 001, first figure)")
axes[1].plot(np.asarray(rk_coarse.t), V_coarse, "tab:red")
axes[1].set_xlim(0, SEED_DURATION)
axes[1].set_title("RK4, a true dt = 0.1 ms" + ("" if bool(rk_coarse.finite) else ": ends in NaN"))
axes[2].plot(10.0 * t[first10], V[first10], "tab:orange")
axes[2].set_title("seed 001's second figure: 1000 steps of 0.01 ms plotted on a 0.1 ms axis")
for ax in axes:
    ax.set_ylabel("V (mV)")
axes[2].set_xlabel("time axis of the plot (ms)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The bottom panel is the report's "failure": one slow, stretched spike. With hh_jax this cannot
# happen, because `result.t` is built from the same `dt` that advanced the state — there is no
# separate time axis to get wrong.
#
# ## 2. Exponential Euler: staggered versus simultaneous
#
# Both schemes advance each gate exactly with V frozen,
# `x ← x∞ + (x − x∞)·exp(−dt/τx)`, and V exactly with the gates frozen (V's equation is linear in
# V). They differ in *which* gates V sees:
#
# - **simultaneous** (`ExpEuler(staggered=False)`, BrainPy's `exp_auto`, Brian2's
#   `exponential_euler`): the *old* gates — a first-order splitting error at every step;
# - **staggered** (`ExpEuler()`, hh_jax's default): the *new* gates — V and gates leapfrog, like
#   NEURON's staggered scheme, which cancels the leading error in the spike times.
#
# The reference is RK4 at REF_DT = 0.002 ms in float64; section 3 measures RK4's spike-time
# error falling as dt⁴, which puts the reference's own error near 10⁻⁹ ms.

# %%
reference = run(hh_jax.RK4(), REF_DT)
ref = spikes(reference)
print(f"reference: {ref.size} spikes at (ms)", np.round(ref, 3))

schemes = {f"{name}": cls() for name, cls in hh_jax.STEPPERS.items()}
schemes["exp_euler (simultaneous)"] = hh_jax.ExpEuler(staggered=False)
results = {(name, dt): run(stepper, dt) for name, stepper in schemes.items() for dt in DTS}

# %%
stag, simu = results[("exp_euler", 0.01)], results[("exp_euler (simultaneous)", 0.01)]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
for r, label, style in [(reference, "reference", "k-"), (stag, "staggered, dt = 0.01", "C0--"),
                        (simu, "simultaneous, dt = 0.01", "C3-")]:
    ax1.plot(np.asarray(r.t), np.asarray(r.V), style, label=label, lw=1.2)
ax1.set_xlim(ref[-1] - 2.0, ref[-1] + 3.0)
ax1.set_xlabel("time (ms)")
ax1.set_ylabel("V (mV)")
ax1.set_title("the last spike before 200 ms")
ax1.legend(fontsize="small")
for r, label, c in [(stag, "staggered", "C0"), (simu, "simultaneous", "C3")]:
    ax2.plot(np.arange(1, ref.size + 1), spikes(r) - ref, "o-", color=c, label=label)
ax2.set_xlabel("spike number")
ax2.set_ylabel("t_spike − t_ref (ms)")
ax2.set_title("spike-time error, dt = 0.01 ms")
ax2.legend(fontsize="small")
plt.tight_layout()
plt.show()
print(f"after {DURATION:g} ms at dt = 0.01 ms: staggered error {np.max(np.abs(spikes(stag) - ref)):.4f} ms, "
      f"simultaneous {np.max(np.abs(spikes(simu) - ref)):.3f} ms")

# %% [markdown]
# The simultaneous scheme's spikes come late by a fixed amount per period, so the error grows
# linearly with time — about 1 ms after 200 ms at dt = 0.01 ms, enough to desynchronise
# neurons in a network. The staggered scheme costs exactly the same (one exponential per gate)
# and is about 100 times more accurate.
#
# ## 3. Spike-time error against dt, for every stepper
#
# For each stepper in `hh_jax.STEPPERS` (plus the simultaneous exponential Euler) and each dt:
# the largest |t_spike − t_ref| over the 200 ms; "failed" if spikes are missing or extra or the
# state became NaN. Spike times are located within the step where V crosses V_th by the cubic
# Hermite interpolant of V through the step's end values and slopes dV/dt
# (`spike_interpolation=hh_jax.HermiteSpikes()`, the default; `hh_jax.LinearSpikes()` takes the
# chord), so a stepper's spike times are as accurate as its states.
#
# For comparison, the last line is an adaptive Diffrax solver through the same `simulate`:
# `backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol, atol))`,
# where `dt` is only the output grid and the first step, and spikes are located on Tsit5's dense
# output.

# %%
def max_error(result):
    s = spikes(result)
    if not bool(result.finite) or s.size != ref.size:
        return np.nan
    return float(np.max(np.abs(s - ref)))


errors = {name: np.array([max_error(results[(name, dt)]) for dt in DTS]) for name in schemes}
print("max spike-time error (ms) against the float64 reference")
print(f"{'stepper':26s}" + "".join(f"{'dt=' + str(dt):>11s}" for dt in DTS) + "   order")
for name, err in errors.items():
    ok = np.isfinite(err)
    slope = np.polyfit(np.log(np.asarray(DTS)[ok]), np.log(err[ok]), 1)[0] if ok.sum() >= 2 else np.nan
    cells = "".join(f"{e:11.2e}" if np.isfinite(e) else f"{'failed':>11s}" for e in err)
    print(f"{name:26s}{cells}   {slope:5.2f}")

tsit5 = hh_jax.simulate(params, CURRENT, duration=DURATION, dt=SAMPLE, record=(), backend=hh_jax.DiffraxAdapter(
    diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=TSIT5_TOL, atol=TSIT5_TOL)))
print(f"{'Tsit5, adaptive':26s}{max_error(tsit5):11.2e}   (rtol = atol = {TSIT5_TOL:g}; steps chosen by the controller)")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for name, err in errors.items():
    ok = np.isfinite(err)
    ax.loglog(np.asarray(DTS)[ok], err[ok], "o-", label=name)
    for dt in np.asarray(DTS)[~ok]:
        ax.axvline(dt, color=ax.get_lines()[-1].get_color(), ls=":", lw=1)
ax.axhline(max_error(tsit5), color="k", ls="--", lw=1, label=f"Tsit5, adaptive (tol {TSIT5_TOL:g})")
ax.set_xlabel("dt (ms)")
ax.set_ylabel("max spike-time error over 200 ms (ms)")
ax.set_title(f"I = {CURRENT:g} µA/cm², {ref.size} spikes (dotted: failed)")
ax.legend(fontsize="small")
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# How to read the table:
#
# - **Staggered exponential Euler** converges at second order in the spike times and never
#   fails: it is unconditionally stable (each sub-step is an exact exponential), so it is the
#   default. At dt = 0.025 ms (NEURON's default) the spikes are off by at most ~0.06 ms after
#   200 ms; at 0.01 ms by ~0.01 ms.
# - **Simultaneous exponential Euler** is stable too but first order with a large constant.
# - **Exponential midpoint** (`ExpMidpoint`) is second order like the staggered scheme, with an
#   error about half as large; it never fails either, and costs about twice as much per step (a
#   half step, then a full step with the rates frozen at the midpoint).
# - **RK4** is the most accurate where it is stable, with a measured order of 4 in the spike
#   times — the Hermite interpolation keeps the threshold crossing as accurate as the states
#   (the linear chord would cap the order at 2, with errors near 10⁻⁴ ms at dt = 0.01 ms) — but
#   it is explicit: at dt = 0.1 ms it blows up.
# - **Exponential RK4** (`ExpRK4`) is fourth order too (four field evaluations, like RK4), several
#   times less accurate than RK4 where RK4 is stable, but, like every exponential scheme, it
#   survives dt = 0.1 ms — with by far the best error there (~0.03 ms): the scheme for large
#   fixed steps.
# - **Forward Euler** (the course notebook's scheme) is first order and also unstable at 0.1 ms.
# - **Tsit5 with a PID controller** reaches sub-microsecond spike times without choosing a step;
#   each accepted step costs six field evaluations plus the controller's error estimate, and the
#   step size is shared by the whole population (see the work-precision front in
#   docs/accuracy.md for when it pays off against a fixed step).
#
# Other steppers registered in `hh_jax.STEPPERS` appear here automatically.
