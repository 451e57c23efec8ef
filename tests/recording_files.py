"""NWB and ABF files of a simulated cell, written with the real libraries (pynwb, pyabf), for the
tests of the loaders (tests/test_recordings.py) and the bad-file rows (tests/bad_input_rows.py).

The cell: HH 1952 parameters, a membrane of `AREA_UM2`, current steps of `CURRENTS` µA/cm² from
5 ms to 5 ms before the end, recorded with Gaussian noise and a liquid-junction offset `LJP_MV`.
NWB: voltage as int16 counts of 10 µV with an offset of −20 mV (``conversion``/``offset``), the
current as int16 counts of 0.5 pA, sampled at 1/dt; ABF1: the voltage in mV (pyabf's writer), the
step family in the epoch table of DAC 0 (pA; the writer's header
is grown from 4 to 12 blocks to hold ABF1's extended header).
"""

import datetime
import struct

import numpy as np

import hh_jax

AREA_UM2 = 2000.0
LJP_MV = 8.0
CURRENTS = (-5.0, 5.0, 15.0)
SWEEPS = (12, 13, 14)
V_COUNT = 1e-5  # V per count
V_OFFSET = -0.02  # V
I_COUNT = 0.5e-12  # A per count


def simulate_cell(density, *, dt, params=None, cell=True):
    """Voltage (mV) ``[T, S]`` of the cell under the density ``[T, S]`` µA/cm², from rest
    (``cell=False``: −65 mV throughout, for files whose content does not matter)."""
    if not cell:
        return np.full(np.shape(density), -65.0)
    p = hh_jax.HHParams.hh1952() if params is None else params
    T = density.shape[0]
    r = hh_jax.simulate(p, hh_jax.Sampled(np.asarray(density), dt=dt, interpolation=hh_jax.LinearSamples()),
                        duration=(T - 1) * dt, dt=dt, y0=hh_jax.equilibrium(p))
    return np.asarray(r.V, float)


def step_density(*, duration, dt, currents=CURRENTS):
    t = dt * np.arange(round(duration / dt) + 1)
    on = (t >= 5.0) & (t < duration - 5.0)
    return t, np.asarray(currents, float)[None, :] * on[:, None]


def write_nwb(path, *, duration=30.0, dt=0.05, noise=0.3, seed=0, sweeps=SWEEPS, currents=CURRENTS,
              table=True, stimulus=True, stim_rate_factor=1.0, voltage_clamp=False, cell=True, short_last=0):
    """Write the cell's sweeps to `path`; returns (t ms, V mV [T, S] as stored minus LJP, I pA [T, S]).
    `short_last`: samples left out of the last sweep (sweeps of different lengths)."""
    import pynwb
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries, VoltageClampSeries

    t, dens = step_density(duration=duration, dt=dt, currents=currents)
    V = simulate_cell(dens, dt=dt, cell=cell) + noise * np.random.default_rng(seed).standard_normal(dens.shape)
    counts_v = np.round(((V + LJP_MV) * 1e-3 - V_OFFSET) / V_COUNT).astype(np.int16)
    counts_i = np.round(dens * AREA_UM2 / 100.0 * 1e-12 / I_COUNT).astype(np.int16)
    nwb = pynwb.NWBFile(session_description="simulated cell", identifier="cell",
                        session_start_time=datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc))
    device = nwb.create_device(name="amplifier")
    el = nwb.create_icephys_electrode(name="e0", description="whole-cell patch", device=device)
    rate = 1000.0 / dt
    for j, k in enumerate(sweeps):
        start = 2.0 * j  # s: sweeps one after the other
        n = counts_v.shape[0] - (short_last if j == len(sweeps) - 1 else 0)
        if voltage_clamp:
            resp = VoltageClampSeries(name=f"vc{k}", data=counts_i[:n, j], electrode=el, gain=1.0, rate=rate,
                                      starting_time=start, conversion=I_COUNT, sweep_number=np.uint64(k))
        else:
            resp = CurrentClampSeries(name=f"cc{k}", data=counts_v[:n, j], electrode=el, gain=0.1, rate=rate,
                                      starting_time=start, conversion=V_COUNT, offset=V_OFFSET, sweep_number=np.uint64(k))
        nwb.add_acquisition(resp)
        stim = None
        if stimulus:
            stim = CurrentClampStimulusSeries(name=f"stim{k}", data=counts_i[:n, j], electrode=el, gain=1.0,
                                              rate=rate * stim_rate_factor, starting_time=start,
                                              conversion=I_COUNT, sweep_number=np.uint64(k))
            nwb.add_stimulus(stim)
        if table and not voltage_clamp:
            nwb.add_intracellular_recording(electrode=el, stimulus=stim, response=resp)
    with pynwb.NWBHDF5IO(path, "w") as io:
        io.write(nwb)
    return t, counts_v * (V_COUNT * 1e3) + V_OFFSET * 1e3 - LJP_MV, counts_i * (I_COUNT * 1e12)


def set_nwb_unit(path, series, unit, conversion=None, where="acquisition"):
    """Overwrite the ``unit`` (and ``conversion``) attributes of ``/<where>/<series>/data`` (a file
    from another tool)."""
    import h5py

    with h5py.File(path, "r+") as f:
        data = f[f"{where}/{series}/data"]
        data.attrs["unit"] = unit
        if conversion is not None:
            data.attrs["conversion"] = conversion


def write_abf(path, *, duration=30.0, dt=0.05, noise=0.3, currents=CURRENTS, units="mV", dac_units="pA",
              stimulus=True, cell=True):
    """Write the cell as an ABF1 file with the steps in DAC 0's epoch table; returns (t, V mV, I pA)
    as pyabf reads them back (the file's precision: 16-bit samples)."""
    import pyabf
    import pyabf.abfWriter

    n = round(duration / dt) + 1
    rate = 1000.0 / dt
    amps = np.asarray(currents, float) * AREA_UM2 / 100.0  # pA
    on, off = round(5.0 / dt), n - round(5.0 / dt)

    def header(buf):
        # pyabf's writer leaves 4 header blocks; ABF1's extended header (the epoch table at
        # bytes 2296-2668, and more that pyabf reads) takes 12 (6 kB): move the data 8 blocks on
        buf[2048:2048] = bytes(4096)
        struct.pack_into("i", buf, 40, 12)  # lDataSectionPtr
        if not stimulus:
            return
        struct.pack_into("8s", buf, 1346, dac_units.ljust(8).encode())  # sDACChannelUnit[0]
        struct.pack_into("2h", buf, 2296, 1, 0)  # nWaveformEnable
        struct.pack_into("2h", buf, 2300, 1, 0)  # nWaveformSource: the epoch table
        types = [1, 1, 1] + [0] * 17  # three step epochs on DAC 0
        levels = [0.0, float(amps[0]), 0.0] + [0.0] * 17
        incs = [0.0, float(amps[1] - amps[0]), 0.0] + [0.0] * 17  # per sweep
        pre = n // 64  # ABF's holding period before the first epoch
        durs = [on - pre, off - on, n - off] + [0] * 17
        struct.pack_into("20h", buf, 2308, *types)
        struct.pack_into("20f", buf, 2348, *levels)
        struct.pack_into("20f", buf, 2428, *incs)
        struct.pack_into("20i", buf, 2508, *durs)

    def write(V):
        pyabf.abfWriter.writeABF1(V.T.copy(), str(path), rate, units=units)
        with open(path, "rb") as f:
            buf = bytearray(f.read())
        header(buf)
        with open(path, "wb") as f:
            f.write(buf)

    assert np.all(np.diff(amps) == amps[1] - amps[0]), "an ABF1 epoch family steps by a constant increment"
    write(np.zeros((n, len(currents))))  # the command waveform first, as pyabf builds it
    abf = pyabf.ABF(str(path))
    I = np.stack([_sweep_c(abf, k) for k in range(len(currents))], axis=1) if stimulus else np.zeros((n, len(currents)))
    V = simulate_cell(I * 100.0 / AREA_UM2, dt=dt, cell=cell) + noise * np.random.default_rng(1).standard_normal(I.shape)
    write(V + LJP_MV if units == "mV" else V)
    abf = pyabf.ABF(str(path))
    V_read = np.stack([_sweep_y(abf, k) for k in range(len(currents))], axis=1)
    return dt * np.arange(n), V_read - LJP_MV, I


def _sweep_c(abf, k):
    abf.setSweep(k)
    return np.asarray(abf.sweepC, float)


def _sweep_y(abf, k):
    abf.setSweep(k)
    return np.asarray(abf.sweepY, float)
