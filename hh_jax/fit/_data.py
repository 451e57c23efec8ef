"""Recordings: the `Recording` type; CSV (``time_ms,voltage_mV[,current]``) and NPZ files.

Malformed files raise a one-line `ValueError` that names the file and the problem. So do files
whose values are implausible for their units (a voltage in volts labelled mV fits gNa ≈ 2000):
`V_RANGE_MV`, `MAX_SPAN_MS`, and currents within the CLIs' ``±MAX_ABS_CURRENT`` µA/cm².
"""

import math
import os

import equinox as eqx
import numpy as np

from .._cli_args import MAX_ABS_CURRENT

V_RANGE_MV = (-200.0, 200.0)
"""Plausible membrane voltages, mV. A recording entirely within ±`V_VOLTS_BELOW` mV is taken to be in volts."""

V_VOLTS_BELOW = 1.0
"""A "voltage_mV" column whose every |value| is below this (mV) holds volts, not millivolts."""

MAX_SPAN_MS = 1e8
"""Longest recording accepted, ms (27.8 h); longer spans are a unit error (µs or ns as ms)."""

MAX_SAMPLES = 10**8
"""Most samples `Recording.resample` makes (0.8 GB per float64 array)."""

_NPZ_KEYS = {"t": ("time_ms", "t", "time"), "V": ("voltage_mV", "V", "voltage"),
             "I": ("current", "I", "current_uA_cm2")}


class Recording(eqx.Module):
    """A single-electrode recording of one or several sweeps: time (ms), voltage (mV), current.

    **Fields:**

    - `t`: ``[T]`` strictly increasing, ms (every sweep on the same grid, from its own start).
    - `V`: membrane voltage, mV, ``[T]`` (one sweep) or ``[T, S]`` (S sweeps: the layout of
      `TraceObjective`'s ``V_data``, one protocol per sweep).
    - `I`: injected current density, µA/cm², shaped as `V`, or None (no stimulus, or a whole-cell
      current whose membrane area is unknown: see `I_pA`).
    - `I_pA`: the injected whole-cell current, pA, shaped as `V`, or None (files that hold a
      density). Loaders of NWB and ABF files keep it; :meth:`with_area` turns it into `I`.
    - `sweeps`: the sweep numbers of the columns of `V` (files' numbering), or None.
    - `area_um2`: the membrane area, µm², that made `I` from `I_pA` (``I = 100·I_pA/area_um2``),
      or None.

    NumPy arrays throughout.

    **Example:** ``rec = load_recording("cell.nwb", sweeps=[12, 13], area_um2=2000.0).resample(0.025)``.
    """

    t: np.ndarray
    V: np.ndarray
    I: np.ndarray | None = None
    I_pA: np.ndarray | None = None
    sweeps: tuple[int, ...] | None = eqx.field(static=True, default=None)
    area_um2: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        t = self.t
        if not isinstance(t, np.ndarray) or t.ndim != 1 or not np.issubdtype(t.dtype, np.number):
            raise TypeError(f"Recording.t must be a 1-D NumPy array of numbers, got {t!r:.60}.")
        for name in ("V", "I", "I_pA"):
            a = getattr(self, name)
            if a is None and name != "V":
                continue
            if not isinstance(a, np.ndarray) or a.ndim not in (1, 2) or not np.issubdtype(a.dtype, np.number):
                raise TypeError(f"Recording.{name} must be a NumPy array of numbers, [T] or [T, sweeps], "
                                f"got {a!r:.60}.")
            if a.shape[0] != t.size:
                raise ValueError(f"Recording.{name} has {a.shape[0]} samples but Recording.t has {t.size}.")
            if name != "V" and a.shape != self.V.shape:
                raise ValueError(f"Recording.{name} has shape {a.shape} but Recording.V has {self.V.shape}.")
        if t.size < 2 or not np.all(np.diff(t) > 0):
            raise ValueError("Recording.t must hold >= 2 strictly increasing times (ms).")
        if self.sweeps is not None and len(self.sweeps) != self.n_sweeps:
            raise ValueError(f"Recording.sweeps names {len(self.sweeps)} sweep(s) but V holds {self.n_sweeps}.")

    @property
    def duration(self) -> float:
        """Recorded time span, ms."""
        return float(self.t[-1] - self.t[0])

    @property
    def n_sweeps(self) -> int:
        """Number of sweeps (1 for a ``[T]`` recording)."""
        return 1 if self.V.ndim == 1 else self.V.shape[1]

    def with_area(self, area_um2: float | None = None, *, capacitance_pf: float | None = None) -> "Recording":
        """The recording with `I` (µA/cm²) from the whole-cell `I_pA` for a membrane area.

        **Arguments:** `area_um2`: membrane area, µm², > 0; or `capacitance_pf`: the cell's
        capacitance, pF, > 0, giving the area at C = 1 µF/cm² (``area_um2 = 100·capacitance_pf``).
        Exactly one of them.

        **Returns:** a new `Recording` with ``I = 100·I_pA/area_um2`` and `area_um2` set.

        **Example:** ``rec.with_area(capacitance_pf=25.0)`` is ``rec.with_area(2500.0)``.
        """
        area = area_from(area_um2, capacitance_pf)
        if area is None:
            raise ValueError("with_area: give area_um2 (um^2) or capacitance_pf (pF).")
        if self.I_pA is None:
            raise ValueError("with_area: this recording holds no whole-cell current (I_pA is None).")
        return Recording(t=self.t, V=self.V, I=self.I_pA * (PA_PER_UM2_IN_UA_PER_CM2 / area), I_pA=self.I_pA,
                         sweeps=self.sweeps, area_um2=area)

    def resample(self, dt: float, *, duration: float | None = None) -> "Recording":
        """Linear interpolation onto the grid ``t[0] + k·dt``, ``k = 0 … duration/dt``.

        **Arguments:** `dt`: ms, > 0; `duration`: ms, default the largest whole number of steps
        inside the recording. A grid reaching past the recording raises `ValueError`.

        **Returns:** a new `Recording` whose time starts at 0 (every sweep resampled alike).
        """
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive finite number (ms), got {dt!r}.")
        span = self.duration
        steps = span / dt if duration is None else duration / dt
        if not steps < MAX_SAMPLES:
            raise ValueError(f"resample: dt = {dt} ms over {span if duration is None else duration:g} ms "
                             f"gives {steps:.3g} samples, more than {MAX_SAMPLES:.0e}; use a larger dt.")
        if duration is None:
            n = int(math.floor(span / dt + 1e-9))
        else:
            n = round(duration / dt)
            if n * dt > span * (1 + 1e-9) + 1e-12:
                raise ValueError(f"duration {duration} ms exceeds the recording ({span:g} ms).")
        if n < 1:
            raise ValueError(f"the recording ({span:g} ms) is shorter than one step dt = {dt} ms.")
        grid = dt * np.arange(n + 1)
        tt = self.t - self.t[0]

        def interp(a):
            if a is None:
                return None
            if a.ndim == 1:
                return np.interp(grid, tt, a)
            return np.stack([np.interp(grid, tt, a[:, j]) for j in range(a.shape[1])], axis=1)

        return Recording(t=grid, V=interp(self.V), I=interp(self.I), I_pA=interp(self.I_pA),
                         sweeps=self.sweeps, area_um2=self.area_um2)


PA_PER_UM2_IN_UA_PER_CM2 = 100.0
"""1 pA/µm² in µA/cm²: the current density is ``100·I_pA/area_um2``."""

PF_PER_UM2 = 0.01
"""Capacitance of 1 µm² of membrane at C = 1 µF/cm², pF (``area_um2 = capacitance_pf/0.01``)."""


def area_from(area_um2=None, capacitance_pf=None) -> float | None:
    """The membrane area, µm², from `area_um2` or `capacitance_pf` (C = 1 µF/cm²); None if neither."""
    if area_um2 is not None and capacitance_pf is not None:
        raise ValueError("give area_um2 or capacitance_pf, not both.")
    for name, x in (("area_um2", area_um2), ("capacitance_pf", capacitance_pf)):
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0):
            raise ValueError(f"{name} must be a positive finite number, got {x!r}.")
    if capacitance_pf is not None:
        return float(capacitance_pf) / PF_PER_UM2
    return None if area_um2 is None else float(area_um2)


def _fail(path, msg):
    raise ValueError(f"{os.path.basename(str(path))}: {msg}")


def _check(path, t, V, I):
    if t.size == 0:
        _fail(path, "no data rows (empty recording).")
    if t.size < 2:
        _fail(path, "need at least 2 samples.")
    for name, a in (("time_ms", t), ("voltage_mV", V), ("current", I)):
        if a is None:
            continue
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            _fail(path, f"{name} is NaN/non-finite at sample {bad[0]} "
                        f"({bad.size} sample(s) in all).")
    with np.errstate(over="ignore"):  # ±1e308: the span check below names it
        step = np.diff(t)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        k = bad[0] + 1
        _fail(path, f"time_ms is not strictly increasing at sample {k} "
                    f"({t[k - 1]:g} then {t[k]:g} ms).")
    _check_plausible(path, t, V, I)


def _check_plausible(path, t, V, I):
    """Values a recording in ms, mV and µA/cm² cannot hold: a unit error, named with a fix."""
    with np.errstate(over="ignore"):
        span = t[-1] - t[0]
    if not span <= MAX_SPAN_MS:
        _fail(path, f"time_ms spans {span:.3g} ms ({t[0]:g} to {t[-1]:g}), more than {MAX_SPAN_MS:.0e} ms "
                    f"(27.8 h); is the time column in ms?")
    lo, hi = float(V.min()), float(V.max())
    if max(abs(lo), abs(hi)) < V_VOLTS_BELOW:
        _fail(path, f"voltage_mV stays within [{lo:.4g}, {hi:.4g}]: that looks like volts, not mV; "
                    f"multiply the column by 1000.")
    if lo < V_RANGE_MV[0] or hi > V_RANGE_MV[1]:
        k = int(np.argmax((V < V_RANGE_MV[0]) | (V > V_RANGE_MV[1])))
        _fail(path, f"voltage_mV is {V[k]:.4g} at sample {k}, outside the plausible range "
                    f"[{V_RANGE_MV[0]:g}, {V_RANGE_MV[1]:g}] mV; if it is in microvolts, divide by 1000.")
    if I is not None and float(np.max(np.abs(I))) > MAX_ABS_CURRENT:
        k = int(np.argmax(np.abs(I) > MAX_ABS_CURRENT))
        _fail(path, f"current is {I[k]:.4g} at sample {k}, outside ±{MAX_ABS_CURRENT:g} uA/cm^2 "
                    f"(the column must be a current density in uA/cm^2).")


def _read_csv(path):
    try:
        with open(path, encoding="utf-8-sig") as f:  # Excel writes a byte-order mark
            lines = [ln.strip() for ln in f.read().splitlines()]
    except UnicodeDecodeError as e:
        _fail(path, f"not a UTF-8 text file ({e.reason} at byte {e.start}).")
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln and not ln.startswith("#")]
    if not numbered:
        _fail(path, "empty file (expected a header 'time_ms,voltage_mV[,current]' and data rows).")
    first = [c.strip() for c in numbered[0][1].split(",")]
    header = None
    try:
        [float(c) for c in first]
    except ValueError:
        header = [c.lower() for c in first]
        numbered = numbered[1:]
    if header is not None:
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            _fail(path, f"column(s) {dup} appear more than once in the header.")
        if "time_ms" not in header:
            _fail(path, f"missing column 'time_ms' (header is {','.join(first)}).")
        if "voltage_mv" not in header:
            _fail(path, f"missing column 'voltage_mV' (header is {','.join(first)}).")
        cols = [header.index("time_ms"), header.index("voltage_mv")]
        cur = [c for c in ("current", "current_ua_cm2", "i") if c in header]
        if cur:
            cols.append(header.index(cur[0]))
        width = len(header)
    else:
        width = len(first)
        if width < 2:
            _fail(path, "missing column: need time_ms,voltage_mV[,current] (found 1 column).")
        cols = [0, 1] + ([2] if width >= 3 else [])
    if not numbered:
        _fail(path, "no data rows (empty recording).")
    data = np.empty((len(numbered), len(cols)))
    for r, (lineno, ln) in enumerate(numbered):
        cells = ln.split(",")
        if len(cells) != width:
            what = "truncated row" if len(cells) < width else "extra values in row"
            _fail(path, f"{what} at line {lineno}: expected {width} values, got {len(cells)}.")
        try:
            data[r] = [float(cells[c]) if cells[c].strip() else math.nan for c in cols]
        except ValueError:
            _fail(path, f"line {lineno}: not a number in {ln!r}.")
    rows = np.array([n for n, _ in numbered])
    t, V = data[:, 0], data[:, 1]
    I = data[:, 2] if len(cols) > 2 else None
    for name, a in (("time_ms", t), ("voltage_mV", V), ("current", I)):
        if a is not None and not np.all(np.isfinite(a)):
            k = np.flatnonzero(~np.isfinite(a))[0]
            _fail(path, f"{name} is NaN/inf/missing at line {rows[k]}.")
    return t, V, I


_EXPECTED_NPZ = "expected a zip of .npy arrays time_ms, voltage_mV[, current], as numpy.savez writes"


def _read_npz(path):
    try:
        f = open(path, "rb")
    except OSError as e:
        _fail(path, f"cannot be read ({e.strerror}).")
    with f:  # our handle: NumPy leaks its own when the zip directory is damaged
        return _read_npz_from(path, f)


def _read_npz_from(path, f):
    magic = f.read(6)
    f.seek(0)
    if not magic:
        _fail(path, f"not a readable NPZ file: empty file ({_EXPECTED_NPZ}).")
    if magic.startswith(b"\x93NUMPY"):
        _fail(path, f"not a readable NPZ file: a single .npy array ({_EXPECTED_NPZ}).")
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        _fail(path, f"not a readable NPZ file: no zip signature ({_EXPECTED_NPZ}).")
    try:
        z = np.load(f, allow_pickle=False)
    except Exception:  # a damaged zip directory: BadZipFile, EOFError, OSError, ...
        _fail(path, f"not a readable NPZ file: the zip archive is damaged or truncated ({_EXPECTED_NPZ}).")
    out = {}
    with z:
        names = list(z.files)
        for k, aliases in _NPZ_KEYS.items():
            found = [n for n in aliases if n in names]
            if not found:
                if k != "I":
                    also = ", ".join(repr(a) for a in aliases[1:])
                    _fail(path, f"missing array {aliases[0]!r} (or {also}); found {names} "
                                f"(expected arrays time_ms, voltage_mV[, current]).")
                out[k] = None
                continue
            name = found[0]
            try:
                a = z[name]
            except ValueError as e:
                if "pickle" in str(e) or "Object arrays" in str(e):
                    _fail(path, f"array {name!r} holds pickled/object data, which is never loaded; "
                                f"store numbers.")
                _fail(path, f"array {name!r} is not a readable .npy array (damaged archive member).")
            except Exception:  # bad CRC, truncated or undecompressable member
                _fail(path, f"array {name!r} is not a readable .npy array (damaged archive member).")
            if not isinstance(a, np.ndarray):
                _fail(path, f"member {name!r} is not a .npy array ({_EXPECTED_NPZ}).")
            if a.dtype.kind not in "iuf" or a.ndim != 1:
                _fail(path, f"array {name!r} must be 1-D real numbers, got {a.dtype} of shape {a.shape}.")
            out[k] = np.asarray(a, float)
    for k in ("V", "I"):
        if out[k] is not None and out[k].shape != out["t"].shape:
            _fail(path, f"{_NPZ_KEYS[k][0]} has {out[k].size} samples but time_ms has {out['t'].size}.")
    return out["t"], out["V"], out["I"]


def load_table(path: str) -> Recording:
    """A `Recording` from a CSV or NPZ file (`path` exists and is a file)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        t, V, I = _read_npz(path)
    elif ext in (".csv", ".txt"):
        t, V, I = _read_csv(path)
    else:
        _fail(path, f"unknown format {ext!r}; use .csv, .npz, .nwb or .abf.")
    _check(path, t, V, I)
    return Recording(t=t, V=V, I=I)
