"""The ``hh-jax`` command line: a thin layer over the public API."""

import argparse
import math
import os
import signal
import sys
from typing import Sequence


from . import _cli_args as cli_args
from ._cli_args import CLIError as CLIError
from ._cli_args import Parser as _Parser
from ._output_dir import write_npz as _atomic_savez
from ._output_dir import write_png as _atomic_savefig
from ._output_dir import write_text as _atomic_write


DIFFRAX_METHODS = {"tsit5": "Tsit5", "dopri5": "Dopri5", "dopri8": "Dopri8", "heun": "Heun",
                   "kvaerno5": "Kvaerno5"}
"""CLI names of the Diffrax solvers accepted by ``--method`` (adaptive, with --rtol/--atol)."""


def _method_names():
    from ._steppers import STEPPERS

    return sorted(STEPPERS) + sorted(DIFFRAX_METHODS)


def _stepper_options(args) -> dict:
    """`simulate` keyword arguments for ``--method``, ``--rtol``, ``--atol``."""
    from ._steppers import STEPPERS

    if args.method in STEPPERS:
        if args.rtol is not None or args.atol is not None:
            raise CLIError(f"--rtol/--atol apply to the Diffrax methods {sorted(DIFFRAX_METHODS)}, "
                           f"not to {args.method}")
        cli_args.check_stability(args.dt, args.method)
        return dict(stepper=STEPPERS[args.method]())
    import diffrax
    import jax

    import hh_jax

    rtol = 1e-6 if args.rtol is None else args.rtol
    cli_args.check_rtol(rtol, jax.dtypes.canonicalize_dtype(float))  # float64 where _needs_x64
    atol = 1e-6 if args.atol is None else args.atol
    solver = getattr(diffrax, DIFFRAX_METHODS[args.method])()
    return dict(backend=hh_jax.DiffraxAdapter(solver, stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol)))


def _commands() -> dict:
    """Subcommand name -> (add_parser(subparsers), run(args) -> exit status).

    Other modules contribute subcommands by adding one entry here; their `run` raises
    `CLIError` (or `ValueError`/`TypeError`) for user errors, printed as one line with status 2.
    """
    from .analysis import _cli as analysis_cli
    from .fit import _cli as fit_cli

    return {
        "simulate": (_add_simulate, _run_simulate),
        "fi": (analysis_cli.add_fi, analysis_cli.run_fi),
        "bifurcation": (analysis_cli.add_bifurcation, analysis_cli.run_bifurcation),
        "fit": (fit_cli.add_parser, fit_cli.run),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hh-jax", description="Hodgkin-Huxley simulations with JAX.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True
    for add_parser, _ in _commands().values():
        add_parser(sub)
    return parser


def _add_simulate(sub) -> None:
    s = sub.add_parser("simulate", help="simulate HH neurons under a constant current")
    cli_args.add_preset(s)
    cli_args.add_temperature(s)
    s.add_argument("--current", type=cli_args.current("--current"), default=10.0,
                   help="injected current density, uA/cm^2 (default: 10)")
    s.add_argument("--duration", type=cli_args.positive("--duration", unit=" ms"), default=200.0,
                   help="simulated time, ms (default: 200)")
    cli_args.add_dt(s, default=0.01)
    s.add_argument("--method", default="exp_euler", choices=_method_names(),
                   help="integration scheme: a fixed-step scan stepper, or an adaptive Diffrax "
                        "solver (tsit5, dopri5, dopri8, heun, kvaerno5; dt is then the output "
                        "grid) (default: exp_euler)")
    s.add_argument("--rtol", type=cli_args.positive("--rtol"), default=None,
                   help="relative tolerance of a Diffrax method; below what float32 resolves "
                        "(4 machine epsilons, 4.8e-7) the run is in float64 (default: 1e-6)")
    s.add_argument("--atol", type=cli_args.positive("--atol", unit=" mV"), default=None,
                   help="absolute tolerance of a Diffrax method, mV (default: 1e-6)")
    s.add_argument("--n", type=cli_args.integer("--n", lo=1, hi=cli_args.MAX_NEURONS), default=1,
                   help="number of neurons (default: 1)")
    s.add_argument("--init", default="steady", choices=["steady", "equilibrium", "brainpy"],
                   help="initial state: steady (gates at steady state at -65 mV), equilibrium (the exact "
                        "equilibrium under --current), brainpy (random V in [-70,-60]) "
                        "(default: steady)")
    cli_args.add_seed(s, what="for --init brainpy")
    s.add_argument("--record-every", type=cli_args.integer("--record-every", lo=1, hi=cli_args.MAX_STEPS),
                   default=1, help="keep every k-th step (default: 1)")
    cli_args.add_out(s)
    cli_args.add_no_plot(s, what="voltage.png")
    s.add_argument("--nwb", action="store_true",
                   help="also write result.nwb: the voltage and the current as NWB current-clamp sweeps "
                        "(one per neuron, a 1000 um^2 membrane; needs pip install 'hh_jax[data]')")


def _needs_x64(args) -> bool:
    """True if ``--rtol`` asks a Diffrax method for more than float32 resolves."""
    import numpy as np

    return (args.method in DIFFRAX_METHODS and args.rtol is not None
            and args.rtol < cli_args.RTOL_EPS_FACTOR * float(np.finfo(np.float32).eps))


def _run_simulate(args) -> int:
    """``hh-jax simulate``, in float64 where the tolerance needs it (e.g. ``--rtol 1e-8``)."""
    import jax

    if _needs_x64(args):
        with jax.enable_x64(True):
            return _simulate(args)
    return _simulate(args)


def _check_simulate_size(args) -> None:
    """Refuse, before anything runs, a run whose steps or traces cannot fit (`CLIError`)."""
    import jax
    import numpy as np

    from ._spikes import HermiteSpikes, crossing_record_bytes
    from ._steppers import STEPPERS

    steps = cli_args.check_steps(args.duration, args.dt)
    if args.record_every > max(steps, 1):
        raise CLIError(f"--record-every {args.record_every} exceeds the number of steps ({steps})")
    itemsize = np.dtype(jax.dtypes.canonicalize_dtype(float)).itemsize
    samples = steps // args.record_every + 1
    spikes = _cli_max_spikes(args.duration)
    # t, V, m, h, n per sample and neuron, the spike buffer; twice: the result and its NumPy copy;
    # and once a fixed-step loop's record of the crossings (refined into the spike buffer)
    record = crossing_record_bytes(jax.dtypes.canonicalize_dtype(float), HermiteSpikes()) if args.method in STEPPERS else 0
    nbytes = 2.0 * itemsize * (samples * (4 * args.n + 1) + spikes * args.n) + spikes * args.n * record
    cli_args.check_memory(nbytes, what=f"recording V, m, h, n of {args.n} neuron(s) at {samples} times",
                          fix="lower --n or --duration, or raise --dt or --record-every")


def _cli_max_spikes(duration: float) -> int:
    """Rows of the spike buffer for ``hh-jax simulate``: a 500 Hz ceiling over the whole run,
    without `simulate`'s 1000-row cap, so that spikes.csv holds every spike of a long run."""
    return int(math.ceil(duration / 2.0)) + 1


def _simulate(args) -> int:
    import jax
    import numpy as np

    import hh_jax

    from ._output_dir import OutputFolder

    if args.nwb:
        from ._nwb import require

        require("pynwb")  # before the computation: the missing extra in one line
    params = cli_args.preset_params(args)
    options = _stepper_options(args)
    _check_simulate_size(args)
    shape = (args.n,)
    if args.init == "steady":
        y0 = hh_jax.steady_state_at(-65.0, shape=shape)
    elif args.init == "equilibrium":
        y0 = hh_jax.equilibrium(params, args.current).broadcast_to(shape)
    else:
        y0 = hh_jax.brainpy_initial_state(jax.random.key(args.seed), shape)
    out = OutputFolder(args.out, command="simulate")  # checked before the computation
    try:
        result = hh_jax.simulate(
            params,
            hh_jax.Constant(args.current),
            duration=args.duration,
            dt=args.dt,
            y0=y0,
            record=("V", "m", "h", "n"),
            record_every=args.record_every,
            max_spikes=_cli_max_spikes(args.duration),
            throw=False,
            **options,
        )
    except ValueError as e:
        raise CLIError(str(e)) from None
    summary = out.write(lambda folder: _write_simulate(folder, args, result, params))
    sys.stdout.write(summary)
    return 0 if bool(result.finite) else 1


def _write_simulate(folder, args, result, params=None) -> str:
    """Write the outputs of ``hh-jax simulate`` into `folder` (the temporary output folder);
    returns the summary. Paths shown in the summary are those under ``--out``."""
    import numpy as np

    arrays = {k: np.asarray(getattr(result, k)) for k in ("t", "V", "m", "h", "n")}
    _atomic_savez(os.path.join(folder, "result.npz"), **arrays)
    if getattr(args, "nwb", False):  # atomic as the others: temporary name, then rename
        import hh_jax

        hh_jax.save_result(os.path.join(folder, "result.nwb"), result, format="nwb",
                           stimulus=hh_jax.Constant(args.current), params=params)
    table = result.spike_table()
    _atomic_write(
        os.path.join(folder, "spikes.csv"),
        "neuron,time_ms\n" + "".join(f"{int(i)},{t:.6f}\n" for i, t in table),
    )
    counts = np.asarray(result.spike_count)
    rate = np.asarray(result.firing_rate)
    lines = [
        f"hh-jax simulate: preset={args.preset} current={args.current} uA/cm^2 "
        f"duration={args.duration} ms dt={args.dt} ms method={args.method} n={args.n} init={args.init}",
        f"spikes: total {int(counts.sum())}, per neuron mean {counts.mean():.2f} "
        f"(min {counts.min()}, max {counts.max()})",
        f"firing rate: mean {rate.mean():.2f} Hz",
    ]
    if len(table):
        lines.append(f"first spike: {table[0, 1]:.3f} ms (neuron {int(table[0, 0])})")
    overflow = np.asarray(result.spike_overflow)
    stored = np.minimum(counts, np.asarray(result.spike_times).shape[0])
    if overflow.any():  # more spikes than rows (above 500 Hz)
        lines.append(f"WARNING: {int(overflow.sum())} neuron(s) fired more than "
                     f"{np.asarray(result.spike_times).shape[0]} times; only that many per neuron "
                     f"are in spikes.csv (the counts above are exact).")
    if int(stored.sum()) > len(table):  # a crossing whose located time is NaN/Inf (huge currents)
        lines.append(f"WARNING: {int(stored.sum()) - len(table)} spike(s) have no finite time and are "
                     f"not in spikes.csv (the current or dt is too large for this method).")
    if not bool(result.finite):
        lines.append("WARNING: the state became NaN/Inf: " + (
            "this method diverges at this dt." if args.method not in DIFFRAX_METHODS
            else "the adaptive solver failed (check --rtol/--atol and --current)."))
    if not args.no_plot:
        _plot(result, args, os.path.join(folder, "voltage.png"))
        lines.append(f"figure: {os.path.join(args.out, 'voltage.png')}")
    lines.append(f"data: {os.path.join(args.out, 'result.npz')}, {os.path.join(args.out, 'spikes.csv')}"
                 + (f", {os.path.join(args.out, 'result.nwb')}" if getattr(args, "nwb", False) else ""))
    summary = "\n".join(lines) + "\n"
    _atomic_write(os.path.join(folder, "summary.txt"), summary)
    return summary


def _plot(result, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hh_jax.plot as hp

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[2, 1])
    hp.voltage(result, ax=ax1, neurons=range(min(args.n, 5)))
    ax1.set_title(f"HH ({args.preset}), I = {args.current} uA/cm^2, {args.method}, dt = {args.dt} ms")
    hp.gates(result, ax=ax2, neuron=0)
    fig.tight_layout()
    _atomic_savefig(fig, path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hh-jax``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _, run = _commands()[args.command]
    previous = _terminate_as_interrupt()
    try:
        return run(args)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the output folder was left as it was
        sys.stderr.write("hh-jax: interrupted; --out was left as it was\n")
        return 130
    except (CLIError, ValueError, TypeError, OSError) as e:
        sys.stderr.write(f"hh-jax: error: {_first_line(e)}\n")
        return 2
    except Exception as e:  # XLA's out-of-memory error, where no estimate caught it
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        sys.stderr.write(f"hh-jax: error: out of memory ({_first_line(e)}); use fewer neurons, "
                         f"a shorter run or a coarser recording\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """The ``hh-jax`` console command and ``python -m hh_jax``: `main`, then exit with its
    status. An interrupted run (Ctrl-C, SIGTERM; status 130) has already cleaned up its output
    folder; it then leaves at once, after flushing its streams, without the interpreter's
    teardown: XLA's threads may still be running work the interrupt cut short, and tearing the
    interpreter down under them crashed the process (SIGSEGV after SIGTERM, seen on a loaded
    machine)."""
    status = main()
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _terminate_as_interrupt():
    """SIGTERM (a batch system's time limit, `timeout`, `kill`) raises `KeyboardInterrupt`, so
    that a run cleans up its temporary output folder as after Ctrl-C. Returns the previous
    handler (None where no handler can be set: not the main thread)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _first_line(e: BaseException) -> str:
    """The first non-empty line of an error message (library messages can carry a hint below)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
