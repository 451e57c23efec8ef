"""Loading recordings: `load_recording` by file type; NWB (`pynwb`) and Axon ABF (`pyabf`) files.

Both loaders read current-clamp sweeps in the files' own units (the unit strings, NWB's
``conversion`` and ``offset``, the sampling rate) and return one `Recording` whose ``V`` is
``[T, S]`` mV for S sweeps, with the injected current as whole-cell pA (``I_pA``) and, given the
membrane area (or the capacitance, at C = 1 µF/cm²), as a density in µA/cm² (``I``). A bad file
raises a one-line `ValueError` naming the file and the problem.
"""

import json
import math
import os
import warnings

import numpy as np

from .._nwb import NOTES_KEY, require
from ._data import Recording, _check_plausible, _fail, area_from, load_table

VOLTS = {"volts": 1.0, "volt": 1.0, "v": 1.0, "mv": 1e-3, "millivolts": 1e-3, "millivolt": 1e-3,
         "uv": 1e-6, "µv": 1e-6, "microvolts": 1e-6}
"""Voltage unit strings (lower case) and their value in volts."""

AMPERES = {"amperes": 1.0, "ampere": 1.0, "amps": 1.0, "a": 1.0, "ma": 1e-3, "ua": 1e-6, "µa": 1e-6,
           "na": 1e-9, "nanoamperes": 1e-9, "pa": 1e-12, "picoamperes": 1e-12}
"""Current unit strings (lower case) and their value in amperes."""

_RATE_RTOL = 1e-9


def _unit(path, table, unit, what):
    u = str(unit).strip().lower()
    if u not in table:
        kind = "voltage" if table is VOLTS else "current"
        _fail(path, f"{what}: unknown units {str(unit).strip()!r} (expected a {kind} unit: "
                    f"{', '.join(k for k in table if k.isascii())}).")
    return table[u]


def _sweep_list(path, sweeps, available):
    """The requested sweep numbers (all by default), each checked to exist."""
    if sweeps is None:
        return list(available)
    if isinstance(sweeps, (int, np.integer)):
        sweeps = [sweeps]
    out = []
    for k in sweeps:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"sweeps must be sweep numbers (integers), got {k!r}.")
        if int(k) not in available:
            shown = ", ".join(str(a) for a in list(available)[:20]) + (" ..." if len(available) > 20 else "")
            _fail(path, f"sweep {int(k)} does not exist (sweeps in the file: {shown}).")
        out.append(int(k))
    if not out:
        raise ValueError("sweeps must name at least one sweep.")
    if len(set(out)) != len(out):
        raise ValueError(f"sweeps repeats a sweep: {out}.")
    return out


def _assemble(path, *, dt, V, I_pA, sweeps, liquid_junction_mV, window, area):
    """One `Recording` from per-sweep arrays: V (mV) and I_pA (pA, or None), all sampled at `dt` ms."""
    lengths = {k: v.size for k, v in zip(sweeps, V)}
    if len(set(lengths.values())) > 1:
        _fail(path, f"the sweeps have different lengths ({', '.join(f'{k}: {n}' for k, n in lengths.items())} "
                    f"samples); load them separately or with a window.")
    if not (isinstance(liquid_junction_mV, (int, float)) and math.isfinite(liquid_junction_mV)):
        raise ValueError(f"liquid_junction_mV must be a finite number (mV), got {liquid_junction_mV!r}.")
    Vm = np.stack(V, axis=1) - float(liquid_junction_mV)
    Ip = None if I_pA is None else np.stack(I_pA, axis=1)
    t = dt * np.arange(Vm.shape[0])
    if window is not None:
        try:
            t0, t1 = (float(w) for w in window)
        except (TypeError, ValueError):
            raise ValueError(f"window must be (start, stop) in ms, got {window!r}.") from None
        keep = (t >= t0 - 1e-9 * dt) & (t <= t1 + 1e-9 * dt)
        if not (t0 < t1) or np.count_nonzero(keep) < 2:
            _fail(path, f"window ({t0:g}, {t1:g}) ms holds fewer than 2 samples of the sweeps (0 to {t[-1]:g} ms).")
        t, Vm = t[keep], Vm[keep]
        Ip = None if Ip is None else Ip[keep]
    if Vm.shape[0] < 2:
        _fail(path, "need at least 2 samples per sweep.")
    for name, a in (("voltage", Vm), ("current", Ip)):
        if a is not None and not np.all(np.isfinite(a)):
            j = int(np.flatnonzero(~np.all(np.isfinite(a), axis=0))[0])
            _fail(path, f"sweep {sweeps[j]}: {name} is NaN/non-finite.")
    I = None if (Ip is None or area is None) else Ip * (100.0 / area)
    _check_plausible(path, t, Vm, I)
    return Recording(t=t, V=Vm, I=I, I_pA=Ip, sweeps=tuple(sweeps), area_um2=None if I is None else area)


def load_recording(path: str | os.PathLike, **options) -> Recording:
    """Load a recording: NWB, ABF, CSV or NPZ, by the file name's extension.

    CSV: columns ``time_ms,voltage_mV`` and optionally ``current`` (µA/cm²), with a header
    naming them (or no header: the columns in that order). NPZ: arrays ``time_ms``,
    ``voltage_mV`` and optionally ``current`` (or ``t``, ``V``, ``I``). ``.nwb`` and ``.abf``
    go to `load_nwb` and `load_abf` (several sweeps, physical units; they take `options`:
    ``sweeps``, ``area_um2``, ``capacitance_pf``, ``liquid_junction_mV``, ``window``,
    ``stimulus``).

    **Arguments:** `path`: file name ending in ``.csv``, ``.npz``, ``.nwb`` or ``.abf``;
    `options`: keyword arguments of `load_nwb`/`load_abf` (none for CSV and NPZ).

    **Returns:** a `Recording`. A missing column, non-monotonic time, NaN rows, an empty or
    truncated file raise `ValueError` with one line naming the file and the problem.

    **Example:** ``rec = load_recording("cell.csv"); rec.resample(0.025)``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file.")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a file.")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".nwb", ".abf"):
        return (load_nwb if ext == ".nwb" else load_abf)(path, **options)
    if options:
        raise TypeError(f"load_recording: {sorted(options)} apply to .nwb and .abf files, not {ext!r}.")
    return load_table(path)


# --- NWB --------------------------------------------------------------------------------------------


def _series_values(path, s, table, target, what):
    """A TimeSeries' data in `target` units (1e-3: mV; 1e-12: pA) from its unit, conversion and offset."""
    # the file's own unit string: pynwb replaces a CurrentClampSeries' unit by "volts" on reading
    # (NWB >= 2.1 fixes it), which would silently misread a file in mV from an older tool
    attrs = getattr(s.data, "attrs", None)
    unit = attrs.get("unit", s.unit) if attrs is not None else s.unit
    unit = unit.decode() if isinstance(unit, bytes) else unit
    u = _unit(path, table, unit, what)
    data = np.asarray(s.data[:], dtype=float)
    if data.ndim != 1:
        _fail(path, f"{what}: data has shape {data.shape}; expected one channel (1-D).")
    scale = float(s.conversion) * u / target  # e.g. 1e-3 · 1 / 1e-3 = 1 exactly
    offset = float(getattr(s, "offset", 0.0) or 0.0) * u / target
    out = data * scale
    return out + offset if offset else out


def _rate(path, s, what):
    """Sampling rate of a TimeSeries, Hz (from ``rate`` or uniform ``timestamps``)."""
    if s.rate is not None:
        return float(s.rate)
    ts = np.asarray(s.timestamps[:], float)
    if ts.size < 2:
        _fail(path, f"{what}: fewer than 2 timestamps.")
    d = np.diff(ts)
    if not np.all(np.abs(d - d.mean()) <= 1e-6 * abs(d.mean())) or d.mean() <= 0:
        _fail(path, f"{what}: timestamps are not uniformly spaced; resample the sweep first.")
    return 1.0 / float(d.mean())


def _table_stimuli(nwb):
    """{id(response series): (stimulus series or None, start, count)} from the intracellular-recordings table."""
    out = {}
    table = getattr(nwb, "intracellular_recordings", None)
    if table is None or len(table) == 0:
        return out
    responses = table.get_category("responses")["response"]
    stim_table = table.get_category("stimuli") if "stimuli" in table.category_tables else None
    stimuli = stim_table["stimulus"] if stim_table is not None and "stimulus" in stim_table.colnames else None
    for i in range(len(table)):
        r = responses[i]
        s = None if stimuli is None else stimuli[i]
        if s is not None and (s.timeseries is None or s.timeseries is r.timeseries or s.idx_start is None
                              or s.idx_start < 0 or s.count is None or s.count < 0):  # no stimulus
            s = None
        out[id(r.timeseries)] = s
    return out


def load_nwb(path, *, sweeps=None, area_um2: float | None = None, capacitance_pf: float | None = None,
             liquid_junction_mV: float = 0.0, window=None, stimulus: bool = True) -> Recording:
    """Load current-clamp sweeps from an NWB file into one `Recording` (``V`` ``[T, S]``).

    Responses are the ``CurrentClampSeries`` in ``/acquisition``, numbered by their
    ``sweep_number`` (else by their order of names); each one's stimulus is the
    ``CurrentClampStimulusSeries`` of its row of the intracellular-recordings table, else the one
    in ``/stimulus`` with the same sweep number. Units come from the series (``unit``,
    ``conversion``, ``offset``, ``rate`` or ``timestamps``): voltages in mV, currents in pA, time
    in ms from each sweep's start.

    **Arguments:**

    - `path`: the ``.nwb`` file.
    - `sweeps`: sweep numbers to load, e.g. ``[12, 13, 14]``; default all.
    - `area_um2`: membrane area, µm², or `capacitance_pf`: the cell's capacitance, pF (area at
      C = 1 µF/cm²): the current density ``I = 100·I_pA/area_um2`` µA/cm². Default: the area
      an hh_jax export stored in the file, else none (``I`` None, ``I_pA`` set; see
      `Recording.with_area`, or fit the area: ``docs/fitting.md``).
    - `liquid_junction_mV`: subtracted from the recorded voltage, mV. Default 0.0.
    - `window`: ``(start, stop)``, ms from the sweep start: keep these samples only. Default all.
    - `stimulus`: require a stimulus series for every sweep. Default True; False loads the
      voltage alone (for a protocol given otherwise).

    **Returns:** a `Recording` with `sweeps` set. A file that is not NWB, has no current-clamp
    series, lacks a requested sweep or a stimulus, has unknown units or mismatched sampling rates
    raises a one-line `ValueError` naming the file.

    **Example:** ``rec = load_nwb("cell.nwb", sweeps=[12, 13, 14], capacitance_pf=30.0)``.
    """
    path = os.fspath(path)
    _exists(path)
    h5py = require("h5py")
    pynwb = require("pynwb")
    if not h5py.is_hdf5(path):
        _fail(path, "not an NWB file (no HDF5 signature).")
    with h5py.File(path, "r") as f:
        if "nwb_version" not in f.attrs:
            _fail(path, "an HDF5 file but not NWB (no nwb_version attribute).")
    area = area_from(area_um2, capacitance_pf)
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    try:
        io = pynwb.NWBHDF5IO(path, "r")
        with warnings.catch_warnings():  # pynwb's note that it resets a unit: read below from the file
            warnings.filterwarnings("ignore", message="Unit .* is ignored")
            nwb = io.read()
    except Exception as e:  # hdmf's errors for damaged or foreign files
        _fail(path, f"not a readable NWB file ({str(e).splitlines()[0] if str(e) else type(e).__name__}).")
    with io:
        series = sorted((s for s in nwb.acquisition.values() if isinstance(s, CurrentClampSeries)),
                        key=lambda s: s.name)
        if not series:
            found = sorted({type(s).__name__ for s in nwb.acquisition.values()})
            _fail(path, f"no current-clamp series (CurrentClampSeries) in /acquisition"
                        f"{' (found: ' + ', '.join(found) + ')' if found else ''}.")
        by_number = {}
        for i, s in enumerate(series):
            k = i if s.sweep_number is None else int(s.sweep_number)
            if k in by_number:
                _fail(path, f"sweep {k} has more than one current-clamp series ({by_number[k].name}, {s.name}).")
            by_number[k] = s
        chosen = _sweep_list(path, sweeps, sorted(by_number))
        linked = _table_stimuli(nwb)
        stim_by_number = {int(s.sweep_number): s for s in nwb.stimulus.values()
                          if isinstance(s, CurrentClampStimulusSeries) and s.sweep_number is not None}
        V, I, rates = [], [], set()
        for k in chosen:
            r = by_number[k]
            what = f"sweep {k} ({r.name})"
            rate = _rate(path, r, what)
            V.append(_series_values(path, r, VOLTS, 1e-3, what))
            if not stimulus:
                rates.add(rate)
                continue
            ref = linked.get(id(r))
            if ref is not None:
                s, lo, n = ref.timeseries, int(ref.idx_start), int(ref.count)
            elif k in stim_by_number:
                s, lo, n = stim_by_number[k], 0, None
            else:
                _fail(path, f"sweep {k} has no stimulus (no CurrentClampStimulusSeries in its intracellular-"
                            f"recordings row or with sweep_number {k}); pass stimulus=False to load the voltage only.")
            swhat = f"sweep {k} stimulus ({s.name})"
            srate = _rate(path, s, swhat)
            if not math.isclose(srate, rate, rel_tol=_RATE_RTOL):
                _fail(path, f"mismatched sampling rates: {what} at {rate:g} Hz, its stimulus at {srate:g} Hz.")
            cur = _series_values(path, s, AMPERES, 1e-12, swhat)
            cur = cur[lo:] if n is None else cur[lo:lo + n]
            if cur.size != V[-1].size:
                _fail(path, f"{what}: the stimulus has {cur.size} samples but the response {V[-1].size}.")
            I.append(cur)
            rates.add(rate)
        rates = sorted(rates)
        if not all(math.isclose(r, rates[0], rel_tol=_RATE_RTOL) for r in rates):
            _fail(path, f"mismatched sampling rates across the sweeps ({', '.join(f'{r:g}' for r in rates)} Hz); "
                        f"load them separately.")
        if area is None:
            area = _stored_area(nwb)
    return _assemble(path, dt=1000.0 / rates[0], V=V, I_pA=I if stimulus else None, sweeps=chosen,
                     liquid_junction_mV=liquid_junction_mV, window=window, area=area)


def _stored_area(nwb):
    """The membrane area an hh_jax export stored in the notes, µm² (else None)."""
    try:
        meta = json.loads(nwb.notes or "")[NOTES_KEY]
        a = float(meta["area_um2"])
        return a if math.isfinite(a) and a > 0 else None
    except (ValueError, TypeError, KeyError):
        return None


def _exists(path):
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file.")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a file.")


# --- ABF --------------------------------------------------------------------------------------------


def load_abf(path, *, sweeps=None, channel: int = 0, area_um2: float | None = None,
             capacitance_pf: float | None = None, liquid_junction_mV: float = 0.0, window=None,
             stimulus: bool = True) -> Recording:
    """Load current-clamp sweeps from an Axon ABF file (ABF1 or ABF2) into one `Recording`.

    The response is ADC `channel` (a voltage), the stimulus the command waveform of the same
    channel's DAC (its epoch table), both in the file's units (mV/V; pA/nA) at the file's
    sampling rate. Sweeps are numbered from 0.

    **Arguments:** `path`: the ``.abf`` file; `channel`: ADC channel, default 0; the others as
    `load_nwb` (`sweeps`, `area_um2` µm² or `capacitance_pf` pF, `liquid_junction_mV` mV,
    `window` ms, `stimulus`).

    **Returns:** a `Recording` (``V`` ``[T, S]`` mV, ``I_pA``, ``I`` µA/cm² given the area).

    **Example:** ``rec = load_abf("cell.abf", sweeps=[0, 1, 2], area_um2=3000.0, liquid_junction_mV=10.0)``.
    """
    path = os.fspath(path)
    _exists(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"ABF ", b"ABF2"):
        _fail(path, f"not an ABF file (starts {magic!r}, expected 'ABF ' or 'ABF2').")
    pyabf = require("pyabf")
    area = area_from(area_um2, capacitance_pf)
    try:
        abf = pyabf.ABF(path)
    except Exception as e:  # pyabf's errors for damaged files
        _fail(path, f"not a readable ABF file ({str(e).splitlines()[0] if str(e) else type(e).__name__}).")
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < abf.channelCount:
        _fail(path, f"channel {channel!r} does not exist (the file has {abf.channelCount} channel(s)).")
    chosen = _sweep_list(path, sweeps, list(range(abf.sweepCount)))
    V, I = [], []
    for k in chosen:
        try:
            abf.setSweep(k, channel=int(channel))
        except Exception as e:
            _fail(path, f"sweep {k}: not readable ({str(e).splitlines()[0] if str(e) else type(e).__name__}).")
        what = f"sweep {k} channel {channel}"
        unit = str(abf.sweepUnitsY).strip("\x00 ")
        if unit.lower() in AMPERES:
            _fail(path, f"no current-clamp data: channel {channel} records a current ({unit}), not a voltage.")
        V.append(np.asarray(abf.sweepY, float) * (_unit(path, VOLTS, unit, what) / 1e-3))
        if stimulus:
            command = np.asarray(abf.sweepC, float)  # pyabf builds it (and its text) on first access
            if str(abf.stimulusByChannel[int(channel)].text).startswith("DAC waveform is not enabled"):
                _fail(path, f"sweep {k} has no stimulus (the DAC waveform of channel {channel} is not enabled); "
                            f"pass stimulus=False to load the voltage only.")
            u = _unit(path, AMPERES, str(abf.sweepUnitsC).strip("\x00 "), f"{what} command")
            I.append(command * (u / 1e-12))
    return _assemble(path, dt=1000.0 / float(abf.dataRate), V=V, I_pA=I if stimulus else None, sweeps=chosen,
                     liquid_junction_mV=liquid_junction_mV, window=window, area=area)


def save_recording(path, recording: Recording) -> None:
    """Write a `Recording` as NWB current-clamp sweeps (atomically), for `load_nwb` and NWB tools.

    One ``CurrentClampSeries`` per sweep (V in mV, ``conversion = 1e-3``) and, where the
    recording has a current, a ``CurrentClampStimulusSeries`` (whole-cell pA, ``conversion =
    1e-12``: `I_pA`, else ``I·area_um2/100``), numbered by `sweeps` (default 0 … S−1), linked in
    the intracellular-recordings table; the area goes into the ``notes``. Loading the file back
    gives the same numbers, times from 0.

    **Arguments:** `path`: file name ending in ``.nwb``; `recording`: a `Recording` on a uniform
    time grid (a density `I` without `I_pA` needs `area_um2`).

    **Example:** ``save_recording("cell_12-14.nwb", load_nwb("cell.nwb", sweeps=[12, 13, 14]))``.
    """
    from .._io import _atomic_replace
    from .._nwb import write_nwb

    if not isinstance(recording, Recording):
        raise TypeError(f"save_recording: recording must be a Recording, got {type(recording).__name__}.")
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".nwb":
        raise ValueError(f"save_recording: {os.path.basename(path)}: only .nwb files are written.")
    t = recording.t
    dt = float(t[1] - t[0])
    if not np.allclose(np.diff(t), dt, rtol=1e-9, atol=0.0):
        raise ValueError("save_recording: the recording's times are not uniform; resample it first.")
    V = recording.V.reshape(t.size, -1)
    I_pA = recording.I_pA
    area = recording.area_um2
    if I_pA is None and recording.I is not None:
        if area is None:
            raise ValueError("save_recording: the current is a density (uA/cm^2) and the recording has no "
                             "area_um2 to make it a whole-cell current; use with_area or set area_um2.")
        I_pA = recording.I * (area / 100.0)
    meta = {"area_um2": area, "dt_ms": dt, "source": "hh_jax.fit.save_recording"}
    I_pA = None if I_pA is None else I_pA.reshape(t.size, -1)
    _atomic_replace(path, lambda tmp: write_nwb(tmp, dt=dt, V=V, I_pA=I_pA, sweeps=recording.sweeps,
                                                description="recording saved by hh_jax", metadata=meta))
