"""``hh-jax fi`` and ``hh-jax bifurcation``: f-I curves and bifurcation diagrams as CSV + PNG."""

import os
import sys

from .. import _cli_args as cli_args
from .._cli_args import CLIError
from .._output_dir import write_png, write_text


def _common(s) -> None:
    cli_args.add_preset(s)
    cli_args.add_temperature(s)
    s.add_argument("--i-min", type=cli_args.current("--i-min"), default=0.0, help="lowest current, uA/cm^2 (default: 0)")
    s.add_argument("--num", type=cli_args.integer("--num", lo=2, hi=cli_args.MAX_POINTS), default=None,
                   help="number of currents on the grid")
    cli_args.add_out(s)
    cli_args.add_no_plot(s)


def _add_parser(sub, name, *, help, i_max):
    """Register subcommand `name` with the options both analysis commands share and its own
    default `--i-max` (µA/cm²); returns the parser."""
    s = sub.add_parser(name, help=help)
    _common(s)
    s.add_argument("--i-max", type=cli_args.current("--i-max"), default=i_max,
                   help=f"highest current, uA/cm^2 (default: {i_max:g})")
    return s


def add_fi(sub) -> None:
    """Register ``hh-jax fi``."""
    s = _add_parser(sub, "fi", help="firing rate vs current (from rest, from a spike train, from equilibrium)",
                    i_max=30.0)
    s.add_argument("--transient", type=cli_args.positive("--transient", unit=" ms"), default=300.0,
                   help="discarded time, ms (default: 300)")
    s.add_argument("--window", type=cli_args.positive("--window", unit=" ms"), default=300.0,
                   help="measurement time, ms (default: 300)")
    cli_args.add_dt(s, default=0.01)


def _grid(args, default_num):
    import numpy as np

    num = default_num if args.num is None else args.num
    if num < 2:
        raise CLIError(f"--num must be >= 2, got {num}")
    if not args.i_min < args.i_max:
        raise CLIError(f"--i-min ({args.i_min}) must be < --i-max ({args.i_max})")
    return np.linspace(args.i_min, args.i_max, num)


def run_fi(args) -> int:
    """Run ``hh-jax fi`` in float64: writes ``fi.csv`` and ``fi.png`` under ``--out``."""
    import jax

    with jax.enable_x64(True):
        return _run_fi(args)


MIN_WINDOW = 20.0
"""Shortest `fi --window` (ms) accepted: two HH inter-spike intervals at high rates."""
MIN_RATE_WINDOW = 100.0
"""Shortest `fi --window` (ms) that measures HH rates without a warning (several ISIs)."""


def _run_fi(args) -> int:
    import hh_jax
    import hh_jax.analysis as A

    from .._output_dir import OutputFolder

    I = _grid(args, 61)
    cli_args.check_steps(args.transient + args.window, args.dt, options="--transient/--window/--dt")
    # a rate needs at least one inter-spike interval in the window (8-20 ms for HH): a shorter
    # window reports 0 Hz everywhere, which reads as a result
    if args.window < MIN_WINDOW:
        raise CLIError(f"--window {args.window:g} ms is shorter than {MIN_WINDOW:g} ms, less than "
                       "two inter-spike intervals of the HH model: it measures no firing rate "
                       "(default 300 ms)")
    if args.window < MIN_RATE_WINDOW:
        cli_args.warn(f"--window {args.window:g} ms is shorter than {MIN_RATE_WINDOW:g} ms: rates below "
                      f"{1000.0 / args.window:.0f} Hz read as 0 and the rest are coarse")
    p = cli_args.preset_params(args)
    kw = dict(transient=args.transient, window=args.window, dt=args.dt)
    out = OutputFolder(args.out, command="fi")  # checked before the computation
    try:
        curves = {
            "rest": A.fi_curve(p, I, start=A.FromHolding(), **kw),
            "spiking": A.fi_curve(p, I, start=A.FromSpiking(), **kw),
            "equilibrium": A.fi_curve(p, I, start=A.FromEquilibrium(), **kw),
        }
    except ValueError as e:
        raise CLIError(str(e)) from None
    lines = out.write(lambda folder: _write_fi(folder, args, I, curves))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _write_fi(folder, args, I, curves) -> list[str]:
    """Write ``fi.csv`` (and ``fi.png``) into `folder` (the temporary output folder); returns
    the summary lines (paths under ``--out``)."""
    import numpy as np

    rows = ["I_uA_cm2,rate_from_rest_Hz,rate_from_spiking_Hz,rate_from_equilibrium_Hz"]
    rates = {k: np.asarray(c.rate) for k, c in curves.items()}
    for j, x in enumerate(I):
        rows.append(f"{x:.6g},{rates['rest'][j]:.6f},{rates['spiking'][j]:.6f},{rates['equilibrium'][j]:.6f}")
    path = os.path.join(args.out, "fi.csv")
    write_text(os.path.join(folder, "fi.csv"), "\n".join(rows) + "\n")
    c = curves["rest"]
    lines = [
        f"hh-jax fi: preset={args.preset} I in [{args.i_min}, {args.i_max}] uA/cm^2 ({len(I)} points)",
        f"from rest: onset {c.onset():.4g} uA/cm^2, minimum rate {c.minimum_rate():.4g} Hz, "
        f"firing stops again at {c.block_onset():.4g} uA/cm^2",
        f"from a spike train: onset {curves['spiking'].onset():.4g}; from the equilibrium: "
        f"onset {curves['equilibrium'].onset():.4g} uA/cm^2",
        f"data: {path}",
    ]
    if not args.no_plot:

        def draw(hp, ax):
            for k, c in curves.items():
                hp.fi(c, ax=ax, label=f"from {k}")
            ax.set_title(f"f-I curve, HH ({args.preset})")

        lines.append(_write_figure(folder, args, "fi.png", draw))
    return lines


def _write_figure(folder, args, name, draw) -> str:
    """Draw one figure with ``draw(hh_jax.plot, ax)``, write it atomically as `name` into
    `folder` (the temporary output folder); returns the summary line (path under ``--out``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hh_jax.plot as hp

    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw(hp, ax)
    fig.tight_layout()
    write_png(fig, os.path.join(folder, name), dpi=120)
    return f"figure: {os.path.join(args.out, name)}"


def add_bifurcation(sub) -> None:
    """Register ``hh-jax bifurcation``."""
    s = _add_parser(sub, "bifurcation", help="equilibrium branch, Hopf points and limit cycles vs current",
                    i_max=200.0)
    s.add_argument("--cycle-step", type=cli_args.positive("--cycle-step", unit=" uA/cm^2"), default=5.0,
                   help="current step of the limit-cycle continuation, uA/cm^2 (default: 5)")
    s.add_argument("--no-cycles", action="store_true", help="skip the limit-cycle branch")


def run_bifurcation(args) -> int:
    """Run ``hh-jax bifurcation`` in float64: writes ``equilibria.csv``, ``hopf.csv``,
    ``cycles.csv`` and ``bifurcation.png`` under ``--out``."""
    import jax

    with jax.enable_x64(True):
        return _run_bifurcation(args)


def _run_bifurcation(args) -> int:
    import numpy as np

    import hh_jax
    import hh_jax.analysis as A

    from .._output_dir import OutputFolder

    I = _grid(args, 201)
    if not args.no_cycles:  # the continuation's currents lie in [--i-min, --i-max]
        cli_args.check_points((args.i_max - args.i_min) / args.cycle_step + 1, option="--cycle-step",
                              context=f" {args.cycle_step:g} over [{args.i_min:g}, {args.i_max:g}] uA/cm^2",
                              limit=cli_args.MAX_CYCLE_POINTS)
    p = cli_args.preset_params(args)
    out = OutputFolder(args.out, command="bifurcation")  # checked before the computation
    branch = A.equilibrium_branch(p, I)
    hopf = np.asarray(A.hopf_points(p, I_min=float(I[0]), I_max=float(I[-1]), num=len(I)))
    cycles = None
    if not args.no_cycles and len(hopf):
        I0 = float(hopf[0]) + 0.25
        up = np.arange(I0, float(I[-1]) + 1e-9, args.cycle_step)
        down = np.arange(I0, max(float(I[0]), 0.0) - 1e-9, -0.5)[1:]
        try:
            b_up = A.cycle_branch(p, up)
            parts = [b_up]
            if len(down):
                try:
                    b_down = A.cycle_branch(p, down)
                    parts.insert(0, __import__("jax").tree_util.tree_map(lambda x: x[::-1], b_down))
                except ValueError:
                    pass
            import jax

            cycles = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)
        except ValueError as e:
            raise CLIError(str(e)) from None
    lines = out.write(lambda folder: _write_bifurcation(folder, args, I, branch, hopf, cycles))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _write_bifurcation(folder, args, I, branch, hopf, cycles) -> list[str]:
    """Write the CSV files (and the PNG) of ``hh-jax bifurcation`` into `folder` (the temporary
    output folder); returns the summary lines (paths under ``--out``)."""
    import numpy as np

    import hh_jax.analysis as A

    w = np.asarray(branch.eigenvalues)
    rows = ["I_uA_cm2,V_mV,m,h,n,stable,class," + ",".join(f"re{k},im{k}" for k in range(4))]
    for j, x in enumerate(I):
        ys = [float(getattr(branch.state, v)[j]) for v in ("V", "m", "h", "n")]
        ev = ",".join(f"{w[j, k].real:.8g},{w[j, k].imag:.8g}" for k in range(4))
        rows.append(f"{x:.6g}," + ",".join(f"{v:.8g}" for v in ys)
                    + f",{int(branch.stable[j])},{A.CLASSES[int(branch.kind[j])]},{ev}")
    write_text(os.path.join(folder, "equilibria.csv"), "\n".join(rows) + "\n")
    write_text(os.path.join(folder, "hopf.csv"), "I_uA_cm2\n" + "".join(f"{h:.10g}\n" for h in hopf))
    if cycles is not None:
        rows = ["I_uA_cm2,period_ms,frequency_Hz,V_max_mV,V_min_mV,stable"]
        for j in range(len(cycles.I)):
            rows.append(f"{cycles.I[j]:.6g},{cycles.period[j]:.8g},{1000.0 / cycles.period[j]:.8g},"
                        f"{cycles.V_max[j]:.8g},{cycles.V_min[j]:.8g},{int(cycles.stable[j])}")
        write_text(os.path.join(folder, "cycles.csv"), "\n".join(rows) + "\n")
    lines = [
        f"hh-jax bifurcation: preset={args.preset} I in [{args.i_min}, {args.i_max}] uA/cm^2",
        "Hopf points: " + (", ".join(f"{h:.4f}" for h in hopf) if len(hopf) else "none") + " uA/cm^2",
    ]
    if cycles is not None:
        lines.append(f"stable cycles from {cycles.I.min():.3g} to {cycles.I.max():.3g} uA/cm^2, "
                     f"rates {1000 / cycles.period.max():.4g}-{1000 / cycles.period.min():.4g} Hz")
    if not args.no_plot:

        def draw(hp, ax):
            hp.bifurcation(branch, cycles=cycles, hopf=hopf, ax=ax)
            ax.set_title(f"Bifurcation diagram, HH ({args.preset})")

        lines.append(_write_figure(folder, args, "bifurcation.png", draw))
    return lines
