"""``hh-jax fit``: fit HH parameters to a recording from the command line.

``--protocol`` is either ``file`` (use the recording's current: the CSV/NPZ current column, the
stimulus series of an NWB file, the command waveform of an ABF file) or a list of steps
``AMP@ON-OFF`` (µA/cm² and ms, e.g. ``10@0-100``; ``AMP`` alone means from 0 to the end)
joined by ``+`` for several steps in one sweep. Its default is ``file`` where the recording
holds a current.

NWB and ABF files hold several sweeps (``--sweeps``), fitted together as one population, and a
whole-cell current (pA) that needs the membrane area: ``--area-um2``, ``--capacitance-pf`` (at
1 µF/cm²) or ``--fit-area`` (the area fitted through C; see `hh_jax.fit.fitted_area`).
"""

import argparse
import io
import json
import math
import os
import sys

from .. import _cli_args as cli_args
from .._output_dir import write_png, write_text


def add_parser(sub) -> None:
    s = sub.add_parser("fit", help="fit HH parameters to a voltage recording")
    s.add_argument("--data", required=True,
                   help="recording: CSV (time_ms,voltage_mV[,current]), NPZ, NWB or ABF")
    s.add_argument("--protocol", default=None,
                   help="'file' (the recording's current) or steps AMP@ON-OFF (uA/cm^2, ms) joined "
                        "by '+', e.g. '10@0-100' (default: file, where the recording holds a current)")
    s.add_argument("--sweeps", type=_sweep_numbers, default=None,
                   help="NWB/ABF: comma-separated sweep numbers, fitted together, e.g. 12,13,14 (default: all)")
    area = s.add_mutually_exclusive_group()
    area.add_argument("--area-um2", type=cli_args.positive("--area-um2", unit=" um^2"), default=None,
                      help="NWB/ABF: membrane area, um^2 (whole-cell current -> density)")
    area.add_argument("--capacitance-pf", type=cli_args.positive("--capacitance-pf", unit=" pF"), default=None,
                      help="NWB/ABF: cell capacitance, pF (the area at C = 1 uF/cm^2)")
    area.add_argument("--fit-area", action="store_true",
                      help="NWB/ABF: fit the membrane area too (through C, at 1 uF/cm^2)")
    s.add_argument("--liquid-junction-mv", type=float, default=0.0,
                   help="NWB/ABF: liquid-junction potential, mV, subtracted from the recorded voltage (default: 0)")
    s.add_argument("--window", type=_window, default=None,
                   help="NWB/ABF: START,STOP in ms from each sweep's start: fit these samples only")
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


def _sweep_numbers(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sweep numbers, e.g. 12,13,14, got {text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated sweep numbers >= 0, got {text!r}")
    return out


def _window(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,STOP in ms, e.g. 5,45, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise argparse.ArgumentTypeError(f"expected 0 <= START < STOP (ms), got {text!r}")
    return a, b


FILE_FORMATS = (".nwb", ".abf")
"""Extensions of the files loaded with sweeps and physical units (`load_nwb`, `load_abf`)."""


def _load(args):
    """The recording (resampled to --dt), the protocol name, and the reference area when fitting it."""
    import hh_jax.fit as hf

    ext = os.path.splitext(args.data)[1].lower()
    file_options = {"--sweeps": args.sweeps, "--area-um2": args.area_um2, "--capacitance-pf": args.capacitance_pf,
                    "--fit-area": args.fit_area or None, "--liquid-junction-mv": args.liquid_junction_mv or None,
                    "--window": args.window}
    if ext in FILE_FORMATS:
        protocol = "file" if args.protocol is None else args.protocol
        rec = hf.load_recording(args.data, sweeps=args.sweeps, area_um2=args.area_um2,
                                capacitance_pf=args.capacitance_pf, liquid_junction_mV=args.liquid_junction_mv,
                                window=args.window, stimulus=protocol == "file")
    else:
        used = [k for k, v in file_options.items() if v is not None]
        if used:
            raise cli_args.CLIError(f"{', '.join(used)}: for NWB and ABF files only, not {os.path.basename(args.data)}")
        rec = hf.load_recording(args.data)
        protocol = args.protocol if args.protocol is not None else ("file" if rec.I is not None else None)
        if protocol is None:
            raise cli_args.CLIError(f"--protocol: {os.path.basename(args.data)} has no current column; "
                                    f"give the steps, e.g. --protocol 10@0-100")
    reference = None
    if protocol == "file" and rec.I_pA is not None:
        if args.fit_area:
            reference = hf.estimate_area(rec)
            rec = rec.with_area(reference)
        elif rec.I is None:
            raise cli_args.CLIError(f"{os.path.basename(args.data)} holds a whole-cell current (pA) and no membrane "
                                    f"area: give --area-um2, --capacitance-pf or --fit-area")
    elif args.fit_area:
        raise cli_args.CLIError("--fit-area needs --protocol file (the whole-cell current of the recording)")
    cli_args.check_steps(rec.duration, args.dt, options=f"--data {os.path.basename(args.data)} / --dt")
    return rec.resample(args.dt), protocol, reference


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
    rec, protocol, reference = _load(args)
    base = cli_args.preset_params(args)
    names = [f.strip() for f in args.fit.split(",") if f.strip()]
    if reference is not None:
        if "C" in names:
            raise cli_args.CLIError("--fit-area fits the area through C (at 1 uF/cm^2): leave C out of --fit")
        base = base.replace(C=1.0)
        names.append("C")
    space = hf.ParamSpace(base, names)
    duration = rec.duration
    if protocol == "file":
        if rec.I is None:
            raise ValueError(f"--protocol file: {args.data} has no current column")
        stim = hh_jax.Sampled(rec.I, dt=args.dt, interpolation=hh_jax.LinearSamples())
    else:
        stim = parse_protocol(protocol, duration)
    # reverse-mode gradients keep every step of every start (~16 values each): refuse up front
    # what cannot fit, naming the options (XLA's out-of-memory error, or an OOM kill, otherwise)
    steps = round(duration / args.dt)
    cli_args.check_memory(16 * 8 * args.starts * steps * rec.n_sweeps, what=f"fitting {args.starts} start(s) over "
                          f"{steps} steps (gradients keep every step)", fix="lower --starts or raise --dt")
    y0 = hh_jax.steady_state_at(float(rec.V[0]) if rec.V.ndim == 1 else rec.V[0])
    obj = hf.TraceObjective(stim, rec.V, dt=args.dt, y0=y0)
    show = not args.no_progress
    res = hf.optimize(obj.window(horizon=0.5), space, n_starts=args.starts, steps=args.steps,
                 key=jax.random.key(args.seed), optimizer=optax.adam(0.05), progress=show,
                 description="fit (teacher-forced)")
    res = hf.optimize(obj, space, init=res, steps=args.steps, optimizer=optax.adam(0.01),
                 progress=show, description="fit (free run)")
    res = hf.polish(obj, res)
    out_folder.write(lambda folder: _write_fit(folder, args, rec, obj, res, protocol, reference))
    text = res.summary()
    if reference is not None:
        params, area = hf.fitted_area(res.params, reference_area_um2=reference)
        text += (f"\nmembrane area {area:.6g} um^2 ({area * 0.01:.4g} pF at 1 uF/cm^2); at C = 1 uF/cm^2: "
                 + ", ".join(f"{n} = {float(getattr(params, n)):.6g}" for n in space.names if n != "C"))
    sys.stdout.write(text + f"\nwritten: {args.out}/params.json, loss.csv, fit.png\n")
    return 0


def _write_fit(folder, args, rec, obj, res, protocol, reference) -> None:
    """Write ``params.json``, ``loss.csv`` and ``fit.png`` into `folder` (the temporary output
    folder). With a fitted area, ``fitted`` and ``params`` hold the densities at C = 1 µF/cm²
    and ``area_um2`` the area; ``fitted_C`` the C fitted against the reference area."""
    import numpy as np

    import hh_jax
    import hh_jax.fit as hf

    params, fitted = res.params, res.values()
    extra = {}
    if reference is not None:
        params, area = hf.fitted_area(res.params, reference_area_um2=reference)
        fitted = {n: float(getattr(params, n)) for n in fitted if n != "C"}
        fitted["area_um2"] = area
        extra = {"area_um2": area, "capacitance_pF": area * 0.01, "reference_area_um2": reference,
                 "fitted_C": float(res.params.C)}
    elif rec.area_um2 is not None:
        extra = {"area_um2": rec.area_um2, "capacitance_pF": rec.area_um2 * 0.01}
    out = {"fitted": fitted, "loss_mV2": float(res.loss),
           "params": {f: float(getattr(params, f)) for f in hh_jax.HHParams.FIELDS},
           "spread": res.spread(), "rejected_steps": int(np.sum(res.n_rejected)),
           "data": os.path.abspath(args.data), "protocol": protocol, "dt_ms": args.dt,
           "sweeps": None if rec.sweeps is None else list(rec.sweeps),
           "liquid_junction_mV": args.liquid_junction_mv, **extra}

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
