"""The command lines' shared option vocabulary: argument types, documented ranges, checks.

Every ``hh-jax`` subcommand (``simulate``, ``fi``, ``bifurcation``, ``fit``) builds its options
from these types and checks, so a bad value is refused the same way everywhere: one line
``hh-jax: error: ...`` on stderr naming the option, exit status 2, before any computation and
before any output is written. The ranges are defined here once:

- `MAX_ABS_CURRENT`: currents (µA/cm²) beyond ±1e4 drive V to tens of volts (V∞ ≈ I/gL); no
  result of the model is meaningful there, and past ±3.4e38 the float32 current is infinite.
- `DT_MAX`: the largest step of the documented accuracy table (README "Steppers, solvers and
  their accuracy"; docs/accuracy.md): 0.1 ms. Larger steps are refused.
- `DT_STABLE`: explicit steppers diverge before that (RK4 and Euler at 0.1 ms, documented stable
  at 0.05 ms): above it a warning names the number.
- `MAX_STEPS`: 1e9 steps per run (the step counter is an int32; at ~10 ns a step such a run
  takes hours per neuron).
- `MAX_POINTS`: 1e5 points on a current grid (``--num``); `MAX_CYCLE_POINTS`: 2000 orbits in
  ``bifurcation``'s continuation (the points ``--cycle-step`` implies).
"""

import argparse
import math
import re
import sys

MAX_ABS_CURRENT = 1e4
"""Largest |current| (µA/cm²) any CLI accepts."""

DT_MAX = 0.1
"""Largest step (ms) in the documented accuracy range of every stepper."""

DT_STABLE = {"rk4": 0.05, "euler": 0.05}
"""Explicit steppers: largest step (ms) documented as stable (both diverge at 0.1 ms)."""

MAX_STEPS = 10**9
"""Most time steps one CLI run may take."""

MAX_POINTS = 10**5
"""Most points of a current grid (``--num``, or implied by ``--cycle-step``)."""

MAX_NEURONS = 10**8
"""Most neurons of ``hh-jax simulate --n`` (its state alone is 1.6 GB in float32; the memory
estimate refuses smaller populations whose traces cannot fit)."""

MAX_CYCLE_POINTS = 2000
"""Most currents of ``hh-jax bifurcation``'s limit-cycle continuation (a Python loop of shooting
solves, each keeping a 2001-sample orbit: about a second and 64 kB per point)."""

MAX_STARTS = 10**4
"""Most random starts of ``hh-jax fit`` (they run as one vmapped population)."""

MAX_OPT_STEPS = 10**7
"""Most optimiser steps per stage of ``hh-jax fit``."""

MAX_SEED = 2**63 - 1
"""PRNG seeds are int64 values."""

RTOL_EPS_FACTOR = 4
"""``--rtol`` must be at least this many machine epsilons of the working dtype (4.8e-7 in
float32, below the default 1e-6; 8.9e-16 in float64): a smaller relative tolerance cannot be
met, and the solver runs out of steps."""


class CLIError(Exception):
    """A user error detected after parsing (printed as one line, exit status 2)."""


# argparse treats an argument starting with '-' as an option unless it looks like a negative
# number by its own rule (r'^-\d+$|^-\d*\.\d+$'), which misses -1e3, -1.e3, -inf and a protocol
# such as -10@0-100. No hh-jax option starts with '-' + digit, '.', 'i' or 'n', so all of these
# are values.
_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2, and which reads
    ``-1e3`` (and ``-inf``, ``-10@0-100``) as a value, not as an unknown option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message):  # noqa: D401 - argparse API
        message = " ".join(str(message).split())  # one line, whatever argparse built
        sys.stderr.write(f"hh-jax: error: {message}\n")
        sys.exit(2)


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _named(conv, name):
    conv.__name__ = name  # argparse's fallback message says "invalid <name> value"
    return conv


def finite(name, *, lo=-math.inf, hi=math.inf, unit=""):
    """Argument type: a finite float in ``[lo, hi]``."""

    def conv(text):
        v = _number(text)
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in [{lo:g}, {hi:g}]{unit}, got {text}")
        return v

    return _named(conv, name)


def positive(name, *, hi=math.inf, unit="", why=""):
    """Argument type: a finite float in ``(0, hi]``; `why` explains the upper bound."""

    def conv(text):
        v = _number(text)
        if not math.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive finite number{unit}, got {text}")
        if v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi:g}{unit}{why}, got {text}")
        return v

    return _named(conv, name)


def current(name):
    """Argument type: a current density, µA/cm², finite and within ±`MAX_ABS_CURRENT`."""

    def conv(text):
        v = _number(text)
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if abs(v) > MAX_ABS_CURRENT:
            raise argparse.ArgumentTypeError(
                f"{text} uA/cm^2 is outside the model's range |I| <= {MAX_ABS_CURRENT:g} uA/cm^2")
        return v

    return _named(conv, name)


def integer(name, *, lo, hi, range_text=None):
    """Argument type: an integer (decimal digits) in ``[lo, hi]`` (described as `range_text`)."""
    range_text = range_text or f"in [{lo}, {hi}]"

    def conv(text):
        try:
            v = int(str(text).strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer {range_text}, got {text}")
        return v

    return _named(conv, name)


def temperature(name="--temperature"):
    """Argument type: a temperature in degC, finite and above absolute zero."""
    base = finite(name, unit=" degC")

    def conv(text):
        v = base(text)
        if not v > -273.15:
            raise argparse.ArgumentTypeError(f"must be above absolute zero (-273.15 degC), got {text}")
        return v

    return _named(conv, name)


def add_temperature(parser) -> None:
    """``--temperature`` (degC), for every subcommand that takes a ``--preset``."""
    parser.add_argument("--temperature", type=temperature(), default=None,
                        help="temperature, degC: every rate times q10^((T - 6.3)/10), q10 = 3 "
                             "(default: the preset's, 6.3 degC)")


def preset_params(args):
    """``HHParams.from_preset(args.preset)`` with ``--temperature`` applied where given."""
    from ._params import HHParams

    overrides = {} if getattr(args, "temperature", None) is None else {"temperature": args.temperature}
    return HHParams.from_preset(args.preset, **overrides)


def seed(name="--seed"):
    """Argument type: a PRNG seed, an int64."""
    return integer(name, lo=-MAX_SEED - 1, hi=MAX_SEED, range_text="that fits in int64 (|seed| < 2**63)")


def time_step(name="--dt"):
    """Argument type: a time step, ms, in ``(0, DT_MAX]`` (the documented accuracy range)."""
    return positive(name, hi=DT_MAX, unit=" ms",
                    why=" (the documented accuracy range of the steppers; README 'Steppers, solvers "
                        "and their accuracy')")


# --- the options every subcommand shares: one name, one type, one check, one help ------------------

def add_preset(s, *, default: str = "brainpy", what: str = "parameter set") -> None:
    """``--preset``: a name of `hh_jax.PRESETS` (refused at parsing otherwise)."""
    from ._params import PRESETS

    s.add_argument("--preset", default=default, choices=sorted(PRESETS),
                   help=f"{what}: {' or '.join(sorted(PRESETS))} (default: {default})")


def add_dt(s, *, default: float, what: str = "time step") -> None:
    """``--dt``: a time step, ms, in ``(0, DT_MAX]`` (`time_step`)."""
    s.add_argument("--dt", type=time_step(), default=default,
                   help=f"{what}, ms, <= {DT_MAX} (default: {default:g})")


def add_seed(s, *, what: str) -> None:
    """``--seed``: an int64 PRNG seed (`seed`), default 0."""
    s.add_argument("--seed", type=seed(), default=0, help=f"PRNG seed {what} (default: 0)")


def add_out(s, *, default: str = "out") -> None:
    """``--out``: the output folder (written whole, see `hh_jax._output_dir`)."""
    s.add_argument("--out", default=default, help=f"output folder (default: {default})")


def add_no_plot(s, *, what: str = "the PNG") -> None:
    """``--no-plot``: skip the figure."""
    s.add_argument("--no-plot", action="store_true", help=f"do not write {what}")


# --- checks after parsing (they need several options) -------------------------------------------

def warn(message: str) -> None:
    """One line ``hh-jax: warning: ...`` on stderr (the run goes on)."""
    sys.stderr.write(f"hh-jax: warning: {' '.join(message.split())}\n")


def check_stability(dt: float, method: str, *, option: str = "--dt") -> None:
    """Warn when `dt` is above the stable range of an explicit `method` (the run goes on: a user
    may want to see it diverge)."""
    limit = DT_STABLE.get(method)
    if limit is not None and dt > limit:
        warn(f"{option} {dt:g} ms is above the stable range of {method} (dt <= {limit:g} ms; it "
             f"diverges at 0.1 ms); exp_euler or exp_rk4 are stable there")


def check_steps(duration: float, dt: float, *, options: str = "--duration/--dt") -> int:
    """The number of steps ``duration / dt``; `CLIError` above `MAX_STEPS`."""
    steps = duration / dt
    if not steps <= MAX_STEPS:
        raise CLIError(f"{options}: {duration:g} ms at dt = {dt:g} ms is {steps:.3g} steps, more "
                       f"than {MAX_STEPS:.0e}; use a larger --dt or a shorter run (hh_jax.simulate_chunked "
                       f"runs longer ones from Python)")
    return int(round(steps))


def check_points(count: float, *, option: str, context: str = "", limit: int = MAX_POINTS) -> None:
    """`CLIError` if a grid of `count` points exceeds `limit` (default `MAX_POINTS`)."""
    if not count <= limit:
        raise CLIError(f"{option}{context} implies {count:.3g} points, more than {limit:g}; "
                       f"use a larger {option}")


def check_rtol(rtol: float, dtype, *, option: str = "--rtol") -> None:
    """`CLIError` if `rtol` is below ``RTOL_EPS_FACTOR`` machine epsilons of `dtype` or not < 1."""
    import numpy as np

    floor = RTOL_EPS_FACTOR * float(np.finfo(dtype).eps)
    if rtol < floor:
        raise CLIError(f"{option} {rtol:g} is below what {np.dtype(dtype).name} can resolve "
                       f"({RTOL_EPS_FACTOR} x machine epsilon = {floor:.2g}); use {option} >= {floor:.2g}")
    if rtol >= 1:
        raise CLIError(f"{option} must be < 1 (a relative tolerance), got {rtol:g}")


def check_memory(nbytes: float, *, what: str, fix: str) -> None:
    """`CLIError` naming the estimate and the available memory (the default accelerator's, else
    the host's: `hh_jax`'s one measure, shared with `simulate`) if `nbytes` cannot fit."""
    from ._simulate_checks import available_memory

    free, where = available_memory()
    if free is not None and nbytes > free:
        raise CLIError(f"{what} needs about {nbytes / 1e9:.3g} GB but {free / 1e9:.3g} GB of {where} "
                       f"is available; {fix}")
