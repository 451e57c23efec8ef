"""Make docs/figures/spike_train.png, the README figure, with the public API only.

Run from the repository root: ``python docs/figures/make_spike_train.py``.
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hh_jax  # noqa: E402
import hh_jax.plot  # noqa: E402

params = hh_jax.HHParams()  # the seeds' (BrainPy) parameters
stimulus = hh_jax.Step(10.0, onset=20.0)  # µA/cm², switched on at 20 ms
result = hh_jax.simulate(params, stimulus, duration=120.0, dt=0.01, record=("V", "m", "h", "n", "I"))

fig, (ax_v, ax_g) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": [2, 1.2]})
hh_jax.plot.voltage(result, ax=ax_v, color="k", lw=1.2, threshold=float(params.V_th))
ax_v.set_xlabel("")
ax_v.set_title(f"hh_jax: one HH neuron, 10 µA/cm² from 20 ms — {int(result.spike_count)} spikes")
hh_jax.plot.gates(result, ax=ax_g, lw=1.1)
fig.tight_layout()
out = pathlib.Path(__file__).with_name("spike_train.png")
fig.savefig(out, dpi=120)
print(f"wrote {out}")
