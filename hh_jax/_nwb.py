"""NWB output: current-clamp sweeps (voltage and injected current) written with `pynwb`.

One file holds S sweeps: per sweep ``k`` a ``CurrentClampStimulusSeries`` ``stimulus_k`` (in
``/stimulus/presentation``) and a ``CurrentClampSeries`` ``response_k`` (in ``/acquisition``), both
with ``sweep_number = k``, linked by a row of the intracellular-recordings table. Voltages are
stored in mV with ``conversion = 1e-3`` (unit ``volts``), currents in pA with ``conversion = 1e-12``
(unit ``amperes``): the numbers are those hh_jax works with, and any NWB reader gets SI units.
`hh_jax` metadata (model parameters, the membrane area that turns densities into whole-cell
currents, dt) go into the file's ``notes`` as JSON under the key ``"hh_jax"``.

`pynwb` and `pyabf` are the optional extra ``data`` (``pip install 'hh_jax[data]'``): `require`
imports them with a one-line error naming what to install.
"""

import datetime
import importlib
import json
import os
import warnings

import numpy as np

EXTRA = "pip install 'hh_jax[data]'  (or: pip install pynwb pyabf)"
"""What to install for NWB and ABF files."""

NOTES_KEY = "hh_jax"
"""Key of the JSON object hh_jax writes into an NWB file's ``notes``."""


def require(module: str):
    """Import `module` (``"pynwb"``, ``"pyabf"``, ``"h5py"``) or raise a one-line `ImportError`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is needed for NWB/ABF files but is not installed: {EXTRA}") from None


def write_nwb(path, *, dt: float, V, I_pA=None, sweeps=None, t0: float = 0.0, description: str,
              metadata: dict) -> None:
    """Write S current-clamp sweeps to the NWB file `path` (callers make it atomic:
    ``hh_jax._io._atomic_replace``).

    **Arguments:** `dt`: sampling interval, ms; `V`: membrane voltage, mV, ``[T, S]``; `I_pA`: the
    injected whole-cell current, pA, ``[T, S]`` or None (no stimulus series); `sweeps`: sweep
    numbers ``[S]`` (default 0 … S−1); `t0`: start time of every sweep, ms; `description`: the
    session description; `metadata`: JSON-ready dict stored under `NOTES_KEY` in ``notes``.
    """
    pynwb = require("pynwb")
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    V = np.asarray(V, float)
    S = V.shape[1]
    sweeps = list(range(S)) if sweeps is None else [int(s) for s in sweeps]
    nwb = pynwb.NWBFile(session_description=description, identifier=f"hh_jax-{os.getpid()}-{id(V)}",
                        session_start_time=datetime.datetime.now(datetime.timezone.utc),
                        notes=json.dumps({NOTES_KEY: metadata}))
    device = nwb.create_device(name="hh_jax", description="simulated Hodgkin-Huxley membrane")
    electrode = nwb.create_icephys_electrode(name="electrode", description="simulated", device=device)
    rate = 1000.0 / float(dt)
    for j, k in enumerate(sweeps):
        common = dict(electrode=electrode, gain=1.0, rate=rate, starting_time=float(t0) / 1000.0, sweep_number=np.uint64(k))
        response = CurrentClampSeries(name=f"response_{k}", data=V[:, j], conversion=1e-3, unit="volts", **common)
        nwb.add_acquisition(response)
        stimulus = None
        if I_pA is not None:
            stimulus = CurrentClampStimulusSeries(name=f"stimulus_{k}", data=np.asarray(I_pA, float)[:, j],
                                                  conversion=1e-12, unit="amperes", **common)
            nwb.add_stimulus(stimulus)
        nwb.add_intracellular_recording(electrode=electrode, response=response, stimulus=stimulus)
    with warnings.catch_warnings():  # a temporary name does not end in .nwb; the file will
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with pynwb.NWBHDF5IO(os.fspath(path), "w") as io:
            io.write(nwb)
