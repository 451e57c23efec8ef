"""``hh-jax fit``: fit HH parameters to a recording from the command line.

``--protocol`` is either ``file`` (use the recording's current column) or a list of steps
``AMP@ON-OFF`` (µA/cm² and ms, e.g. ``10@0-100``; ``AMP`` alone means from 0 to the end)
joined by ``+`` for several steps in one sweep.
"""

import io
import json
import math
import os
import sys

from .. import _cli_args as cli_args
from .._output_dir import write_png, write_text


def add_parser(sub) -> None:
    s = sub.add_parser("fit", help="fit HH parameters to a voltage recording")
    s.add_argument("--data", required=True, help="recording: CSV (time_ms,voltage_mV[,current]) or NPZ")
    s.add_argument("--protocol", required=True,
                   help="'file' (the recording's current column) or steps AMP@ON-OFF "
                        "(uA/cm^2, ms) joined by '+', e.g. '10@0-100'")
    s.add_argument("--fit", default="gNa,gK,gL", help="comma-separated fields to fit (default: gNa,gK,gL)")
    cli_args.add_preset(s, default="hh1952", what="parameter set: fixed values and initial guess")
    cli_args.add_temperature(s)
    cli_args.add_dt(s, default=0.025)
    s.add_argument("--starts", type=cli_args.integer("--starts", lo=1, hi=cli_args.MAX_STARTS), default=8,
                   help="number of random starts (default: 8)")
    s.add_argument("--steps", type=cli_args.integer("--steps", lo=1, hi=cli_args.MAX_OPT_STEPS), default=150,
                   help="optimiser steps per stage (default: 150)")
    cli_args.add_seed(s, what="of the starts")
    cli_args.add_out(s, default="out/fit")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_protocol(text: str, duration: float):
    """An `AbstractStimulus` from ``AMP@ON-OFF[+...]``; `ValueError` naming the bad part.

    `duration` (ms) is the recording's span, from its first sample: a step that starts at or
    after it (it would inject nothing into the fit) raises `ValueError` naming both spans, and
    an amplitude beyond ``±MAX_ABS_CURRENT`` µA/cm² is refused as in every CLI.
    """
    import hh_jax

    stim = None
    for part in text.split("+"):
        part = part.strip()
        try:
            if "@" in part:
                amp, window = part.split("@")
                on, off = (float(x) for x in window.split("-"))
            else:
                amp, on, off = part, 0.0, math.inf
            amp = float(amp)
        except ValueError:
            raise ValueError(f"--protocol: cannot parse {part!r}; expected AMP@ON-OFF, e.g. 10@0-100") from None
        if not (math.isfinite(amp) and math.isfinite(on) and on >= 0 and off > on):
            raise ValueError(f"--protocol: {part!r} needs finite AMP and 0 <= ON < OFF")
        if abs(amp) > cli_args.MAX_ABS_CURRENT:
            raise ValueError(f"--protocol: {part!r}: {amp:g} uA/cm^2 is outside the model's range "
                             f"|I| <= {cli_args.MAX_ABS_CURRENT:g} uA/cm^2")
        if on >= duration:
            raise ValueError(f"--protocol: step {part!r} ({on:g}-{off:g} ms) lies outside the recording "
                             f"(0-{duration:g} ms from its first sample): it would fit zero current")
        step = hh_jax.Step(amp, onset=on, offset=off if off < duration else math.inf)
        stim = step if stim is None else stim + step
    return stim


def run(args) -> int:
    import jax
    import numpy as np
    import optax

    import hh_jax
    import hh_jax.fit as hf

    from .._output_dir import OutputFolder

    out_folder = OutputFolder(args.out, command="fit")  # checked before the computation
    rec = hf.load_recording(args.data)
    cli_args.check_steps(rec.duration, args.dt, options=f"--data {os.path.basename(args.data)} / --dt")
    rec = rec.resample(args.dt)
    base = cli_args.preset_params(args)
    space = hf.ParamSpace(base, [f.strip() for f in args.fit.split(",") if f.strip()])
    duration = rec.duration
    if args.protocol == "file":
        if rec.I is None:
            raise ValueError(f"--protocol file: {args.data} has no current column")
        stim = hh_jax.Sampled(rec.I, dt=args.dt, interpolation="linear")
    else:
        stim = parse_protocol(args.protocol, duration)
    # reverse-mode gradients keep every step of every start (~16 values each): refuse up front
    # what cannot fit, naming the options (XLA's out-of-memory error, or an OOM kill, otherwise)
    steps = round(duration / args.dt)
    cli_args.check_memory(16 * 8 * args.starts * steps, what=f"fitting {args.starts} start(s) over "
                          f"{steps} steps (gradients keep every step)", fix="lower --starts or raise --dt")
    y0 = hh_jax.steady_state_at(float(rec.V[0]))
    obj = hf.TraceObjective(stim, rec.V, dt=args.dt, y0=y0)
    show = not args.no_progress
    res = hf.optimize(obj.window(horizon=0.5), space, n_starts=args.starts, steps=args.steps,
                 key=jax.random.key(args.seed), optimizer=optax.adam(0.05), progress=show,
                 description="fit (teacher-forced)")
    res = hf.optimize(obj, space, init=res, steps=args.steps, optimizer=optax.adam(0.01),
                 progress=show, description="fit (free run)")
    res = hf.polish(obj, res)
    out_folder.write(lambda folder: _write_fit(folder, args, rec, obj, res))
    sys.stdout.write(res.summary() + f"\nwritten: {args.out}/params.json, loss.csv, fit.png\n")
    return 0


def _write_fit(folder, args, rec, obj, res) -> None:
    """Write ``params.json``, ``loss.csv`` and ``fit.png`` into `folder` (the temporary output
    folder)."""
    import numpy as np

    import hh_jax

    out = {"fitted": res.values(), "loss_mV2": float(res.loss),
           "params": {f: float(getattr(res.params, f)) for f in hh_jax.HHParams.FIELDS},
           "spread": res.spread(), "rejected_steps": int(np.sum(res.n_rejected)),
           "data": os.path.abspath(args.data), "protocol": args.protocol, "dt_ms": args.dt}

    write_text(os.path.join(folder, "params.json"), json.dumps(out, indent=2))
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(res.history), delimiter=",",
               header=",".join(f"start{i}" for i in range(res.history.shape[1])), comments="")
    write_text(os.path.join(folder, "loss.csv"), buf.getvalue())
    sim = obj.simulate(res.params)
    _figure(rec, sim, res, os.path.join(folder, "fit.png"))


def _figure(rec, sim, res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hh_jax.plot as hp

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), width_ratios=[2, 1])
    hp.fit_overlay(rec.t, rec.V, sim, ax=a)
    hp.loss_curve(res, ax=b)
    fig.tight_layout()

    write_png(fig, path, dpi=110)
