"""Runs ONE peer simulator configuration; executed by the peers' Python (not hh_jax's).

Reads a JSON request from argv[1], prints one JSON line. Every peer gets the same model: the
seeds' HH parameters (preset), V = −65 mV with the gates at steady state, a constant current,
spike = upward crossing of V_th. This file must not import hh_jax (other venv).
A request with ``"kind": "grad"`` times a peer's gradient instead (issue 14; Jaxley only).
"""

import json
import math
import resource
import sys
import time

import numpy as np

PRESETS = {
    "brainpy": dict(C=1.0, gNa=120.0, ENa=50.0, gK=36.0, EK=-77.0, gL=0.03, EL=-54.387, V_th=20.0),
    "hh1952": dict(C=1.0, gNa=120.0, ENa=50.0, gK=36.0, EK=-77.0, gL=0.3, EL=-54.387, V_th=20.0),
}



def _peak_rss_mib() -> float:
    """Peak resident memory of this process image, MiB: ``VmHWM`` (Linux). ``ru_maxrss`` would
    carry over the parent's resident size across the fork + exec that started this worker (a
    benchmark process holding 10 GB reported 10 GB for every later peer run)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB → MiB (Linux)

def _vtrap(u):
    return 1.0 - 0.5 * u if abs(u) < 1e-6 else u / math.expm1(u)


def steady_gates(V):
    am, bm = _vtrap(-(V + 40) / 10), 4 * math.exp(-(V + 65) / 18)
    ah, bh = 0.07 * math.exp(-(V + 65) / 20), 1 / (1 + math.exp(-(V + 35) / 10))
    an, bn = 0.1 * _vtrap(-(V + 55) / 10), 0.125 * math.exp(-(V + 65) / 80)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


def _timed(run, reset, repeats):
    reset()
    t = time.perf_counter()
    out = run()
    compile_s = time.perf_counter() - t
    times, cpus = [], []
    for _ in range(repeats):
        reset()
        t, c = time.perf_counter(), time.process_time()
        out = run()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return compile_s, times, cpus, out


# ------------------------------------------------------------------------------------ numba
def numba_peer(req):
    import numba
    from numba import njit, prange

    p, n, dt, steps = PRESETS[req["preset"]], req["n"], req["dt"], req["steps"]
    staggered = req["method"] == "exp_euler_staggered"
    S = 64 if req["want_spike_times"] else 0

    # threads only pay off with enough neurons; one neuron runs serially (no fork/join per call)
    @njit(parallel=n >= 64, fastmath=False)
    def kernel(V0, m0, h0, n0, I, count, times):
        for i in prange(V0.shape[0]):
            V, m, h, nn, c = V0[i], m0[i], h0[i], n0[i], 0
            for k in range(steps):
                u = -(V + 40.0) / 10.0
                am = 1.0 - 0.5 * u if abs(u) < 1e-6 else u / math.expm1(u)
                u = -(V + 55.0) / 10.0
                an = 0.1 * (1.0 - 0.5 * u if abs(u) < 1e-6 else u / math.expm1(u))
                bm = 4.0 * math.exp(-(V + 65.0) / 18.0)
                ah = 0.07 * math.exp(-(V + 65.0) / 20.0)
                bh = 1.0 / (1.0 + math.exp(-(V + 35.0) / 10.0))
                bn = 0.125 * math.exp(-(V + 65.0) / 80.0)
                km, kh, kn = am + bm, ah + bh, an + bn
                m1 = am / km + (m - am / km) * math.exp(-dt * km)
                h1 = ah / kh + (h - ah / kh) * math.exp(-dt * kh)
                n1 = an / kn + (nn - an / kn) * math.exp(-dt * kn)
                if staggered:
                    m, h, nn = m1, h1, n1
                gna = p_gNa * m * m * m * h
                gk = p_gK * nn * nn * nn * nn
                g = gna + gk + p_gL
                Vinf = (I[i] + gna * p_ENa + gk * p_EK + p_gL * p_EL) / g
                Vn = Vinf + (V - Vinf) * math.exp(-dt * g / p_C)
                if V < p_Vth and Vn >= p_Vth:
                    if c < times.shape[0]:
                        times[c, i] = (k + (p_Vth - V) / (Vn - V)) * dt
                    c += 1
                V, m, h, nn = Vn, m1, h1, n1
            count[i] = c

    p_gNa, p_gK, p_gL, p_ENa, p_EK, p_EL, p_C, p_Vth = (
        p["gNa"], p["gK"], p["gL"], p["ENa"], p["EK"], p["EL"], p["C"], p["V_th"])
    dtype = np.float32 if req["dtype"] == "float32" else np.float64
    m0, h0, n0 = steady_gates(-65.0)
    state = {}

    def reset():
        state["args"] = (np.full(n, -65.0, dtype), np.full(n, m0, dtype), np.full(n, h0, dtype),
                         np.full(n, n0, dtype), np.full(n, req["current"], dtype),
                         np.zeros(n, np.int64), np.full((S, n), np.inf))

    def run():
        kernel(*state["args"])
        return state["args"][5], state["args"][6]

    compile_s, times, cpus, (count, st) = _timed(run, reset, req["repeats"])
    out = dict(version=numba.__version__, compile_s=compile_s, times_s=times, cpu_s=cpus,
               spike_counts=count.tolist() if n <= 1000 else int(count.sum()),
               threads=numba.get_num_threads())
    if S:
        out["spike_times"] = [st[:, i][np.isfinite(st[:, i])].tolist() for i in range(n)]
    return out


# ---------------------------------------------------------------------------------- brainpy
def brainpy_peer(req):
    import brainpy as bp
    import brainpy.math as bm

    if req["dtype"] == "float64":
        bm.enable_x64()
    p, n, steps = PRESETS[req["preset"]], req["n"], req["steps"]
    bm.set_dt(req["dt"])
    hh = bp.dyn.HH(n, method="exp_auto", V_initializer=bp.init.Constant(-65.0), ENa=p["ENa"],
                   gNa=p["gNa"], EK=p["EK"], gK=p["gK"], EL=p["EL"], gL=p["gL"], V_th=p["V_th"],
                   C=p["C"])
    count = bm.Variable(bm.zeros(n, dtype=int))
    want = req["want_spike_times"]

    def one(i):
        bp.share.save(i=i, t=i * bm.get_dt())
        hh.update(req["current"])
        count.value += hh.spike.value
        return hh.spike.value if want else None

    def reset():
        hh.reset_state()
        count.value = bm.zeros(n, dtype=int)

    indices = np.arange(steps)
    loop = bm.jit(lambda: bm.for_loop(one, indices))  # compiled once, reused by every repeat

    def run():
        out = loop()
        count.value.block_until_ready()
        return out

    compile_s, times, cpus, spikes = _timed(run, reset, req["repeats"])
    c = np.asarray(count.value)
    out = dict(version=bp.__version__, compile_s=compile_s, times_s=times, cpu_s=cpus,
               spike_counts=c.tolist() if n <= 1000 else int(c.sum()))
    if want:  # BrainPy marks the step after the crossing; no interpolation
        s = np.asarray(spikes)
        out["spike_times"] = [((np.nonzero(s[:, i])[0] + 1) * req["dt"]).tolist() for i in range(n)]
    return out


# ----------------------------------------------------------------------------------- brian2
def brian2_peer(req):
    import brian2 as b2
    from brian2 import mV, ms, msiemens, uF, uA, cm

    b2.prefs.codegen.target = "cython"
    b2.prefs.core.default_float_dtype = np.float32 if req["dtype"] == "float32" else np.float64
    p, n = PRESETS[req["preset"]], req["n"]
    b2.defaultclock.dt = req["dt"] * ms
    eqs = """
    dv/dt = (I - gNa*m**3*h*(v-ENa) - gK*n**4*(v-EK) - gL*(v-EL))/C : volt
    dm/dt = am*(1-m) - bm*m : 1
    dh/dt = ah*(1-h) - bh*h : 1
    dn/dt = an*(1-n) - bn*n : 1
    am = 1/exprel(-(v+40*mV)/(10*mV))/ms : Hz
    bm = 4*exp(-(v+65*mV)/(18*mV))/ms : Hz
    ah = 0.07*exp(-(v+65*mV)/(20*mV))/ms : Hz
    bh = 1/(1+exp(-(v+35*mV)/(10*mV)))/ms : Hz
    an = 0.1/exprel(-(v+55*mV)/(10*mV))/ms : Hz
    bn = 0.125*exp(-(v+65*mV)/(80*mV))/ms : Hz
    """
    ns = dict(I=req["current"] * uA / cm**2, gNa=p["gNa"] * msiemens / cm**2, ENa=p["ENa"] * mV,
              gK=p["gK"] * msiemens / cm**2, EK=p["EK"] * mV, gL=p["gL"] * msiemens / cm**2,
              EL=p["EL"] * mV, C=p["C"] * uF / cm**2, Vth=p["V_th"] * mV)
    G = b2.NeuronGroup(n, eqs, threshold="v > Vth", refractory="v > Vth",
                       method="exponential_euler", namespace=ns)
    m0, h0, n0 = steady_gates(-65.0)
    G.v, G.m, G.h, G.n = -65.0 * mV, m0, h0, n0
    mon = b2.SpikeMonitor(G, record=req["want_spike_times"])
    net = b2.Network(G, mon)
    net.store()
    run = lambda: net.run(req["duration"] * ms)
    compile_s, times, cpus, _ = _timed(run, lambda: net.restore(), req["repeats"])
    c = np.asarray(mon.count)
    out = dict(version=b2.__version__, compile_s=compile_s, times_s=times, cpu_s=cpus,
               spike_counts=c.tolist() if n <= 1000 else int(c.sum()))
    if req["want_spike_times"]:
        tr = mon.spike_trains()
        out["spike_times"] = [np.asarray(tr[i] / ms).tolist() for i in range(n)]
    return out


# ----------------------------------------------------------------------------------- NEURON
def neuron_peer(req):
    import neuron
    from neuron import h

    h.load_file("stdrun.hoc")
    p, n = PRESETS[req["preset"]], req["n"]
    h.celsius = 6.3  # hh.mod's rates are the 1952 ones at 6.3 °C (q10 factor 1)
    h.dt = req["dt"]
    h.steps_per_ms = 1.0 / req["dt"]
    diam = math.sqrt(100.0 / math.pi)  # area π·d·L = 100 µm² = 1e-6 cm²
    secs, clamps, ncs, vecs = [], [], [], []
    for _ in range(n):
        s = h.Section()
        s.L = s.diam = diam
        s.cm = p["C"]
        s.insert("hh")
        seg = s(0.5)
        seg.hh.gnabar, seg.hh.gkbar, seg.hh.gl = p["gNa"] * 1e-3, p["gK"] * 1e-3, p["gL"] * 1e-3
        seg.hh.el = p["EL"]
        s.ena, s.ek = p["ENa"], p["EK"]
        c = h.IClamp(seg)
        c.delay, c.dur, c.amp = 0.0, 1e9, req["current"] * 1e-6 * 1e3  # µA/cm² · cm² → nA
        nc = h.NetCon(seg._ref_v, None, sec=s)
        nc.threshold = p["V_th"]
        v = h.Vector()
        nc.record(v)
        secs.append(s), clamps.append(c), ncs.append(nc), vecs.append(v)

    def run():
        h.finitialize(-65.0)
        h.continuerun(req["duration"])

    compile_s, times, cpus, _ = _timed(run, lambda: None, req["repeats"])
    counts = np.array([len(v) for v in vecs])
    out = dict(version=neuron.__version__, compile_s=compile_s, times_s=times, cpu_s=cpus,
               spike_counts=counts.tolist() if n <= 1000 else int(counts.sum()))
    if req["want_spike_times"]:
        out["spike_times"] = [list(v) for v in vecs]
    return out


# ----------------------------------------------------------------------------- Jaxley grad
def _checkpoint_lengths(steps):
    """Two nested scan lengths near √steps whose product is ≥ steps (exactly steps if possible)."""
    r = math.isqrt(steps)
    for inner in range(r, max(r // 2, 1), -1):  # an exact factor pair near √steps: no padded steps
        if steps % inner == 0:
            return [steps // inner, inner]
    inner = math.ceil(math.sqrt(steps))
    return [math.ceil(steps / inner), inner]


def jaxley_grad_peer(req):
    """Jaxley: gradient of L = Σ V² (every step, every cell) w.r.t. (gNa, gK, gL) in mS/cm².

    One single-compartment cell with Jaxley's ``HH`` channel (no axial current: a point neuron;
    area 100 µm², so I [nA] = I [µA/cm²] · 1e-3), the preset's parameters, V = −65 mV with the
    gates at steady state (``init_states``); N cells either as ``jax.vmap`` of that cell over the
    per-cell stimulus (``layout="vmap"``, the default) or one ``jx.Network`` of N cells. The
    gradient is ``jax.grad`` of ``jx.integrate(..., checkpoint_lengths=[a, b])`` (a·b ≥ steps,
    both near √steps); the forward is the loss alone, ``jx.integrate`` without checkpointing.
    """
    import jax

    if req["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxley as jx
    from jaxley.channels import HH

    p, n, dt, steps = PRESETS[req["preset"]], req["n"], req["dt"], req["steps"]
    solver, layout = req.get("method") or "bwd_euler", req.get("layout") or "vmap"
    ckpt = req.get("checkpoint_lengths") or _checkpoint_lengths(steps)
    dtype = jnp.float64 if req["dtype"] == "float64" else jnp.float32
    area = 100.0  # µm²: 2π·r·l
    radius = 1.0
    length = area / (2 * math.pi * radius)
    currents = (np.linspace(6.0, 14.0, n) if n > 1 else np.array([req["current"]]))
    i_nA = jnp.asarray(currents * area * 1e-5, dtype)  # µA/cm² · µm² · 1e-8 cm²/µm² · 1e3 nA/µA

    def make_cell():
        cell = jx.Cell(jx.Branch(jx.Compartment(), ncomp=1), parents=[-1])
        cell.set("radius", radius)
        cell.set("length", length)
        cell.set("capacitance", p["C"])
        cell.insert(HH())
        for k, v in (("HH_gNa", p["gNa"] * 1e-3), ("HH_gK", p["gK"] * 1e-3),  # S/cm²
                     ("HH_gLeak", p["gL"] * 1e-3), ("HH_eNa", p["ENa"]), ("HH_eK", p["EK"]),
                     ("HH_eLeak", p["EL"])):
            cell.set(k, v)
        cell.set("v", -65.0)
        cell.init_states()
        return cell

    t_build = time.perf_counter()
    if layout == "vmap":
        module = make_cell()
    elif layout == "network":
        module = jx.Network([make_cell() for _ in range(n)])
    elif layout == "network_vectorized":  # the cells' voltage solves batched (Jaxley's GPU default)
        module = jx.Network([make_cell() for _ in range(n)], vectorize_cells=True)
    else:
        raise ValueError(f"layout must be 'vmap', 'network' or 'network_vectorized', got {layout!r}.")
    module.record("v", verbose=False)
    for name in ("HH_gNa", "HH_gK", "HH_gLeak"):  # one value shared by every cell
        module.make_trainable(name, verbose=False)
    build_s = time.perf_counter() - t_build
    names = [next(iter(d)) for d in module.get_parameters()]
    scale = {"HH_gNa": 1e-3, "HH_gK": 1e-3, "HH_gLeak": 1e-3}  # mS/cm² → S/cm²
    index = {"HH_gNa": 0, "HH_gK": 1, "HH_gLeak": 2}
    t_max = steps * dt  # Jaxley runs int(t_max // dt + 1) steps (checked below)

    def traces(g, checkpoint):
        params = [{k: jnp.reshape(g[index[k]] * scale[k], (1,))} for k in names]
        lengths = ckpt if checkpoint else None

        def run(i):
            stim = jnp.broadcast_to(i[..., None], i.shape + (steps,))
            ds = module.data_stimulate(stim)
            return jx.integrate(module, params=params, data_stimuli=ds, t_max=t_max, delta_t=dt,
                                solver=solver, checkpoint_lengths=lengths)

        if layout == "vmap":
            return jax.vmap(run)(i_nA)[:, 0, :]  # (n, steps + 1)
        return run(i_nA)  # network: (n, steps + 1)

    def loss(g, checkpoint):
        V = traces(g, checkpoint)
        return jnp.sum(V * V)

    g0 = jnp.asarray([p["gNa"], p["gK"], p["gL"]], dtype)
    forward = jax.jit(lambda g: loss(g, False))
    grad = jax.jit(jax.grad(lambda g: loss(g, True)))

    def first_and_times(f):
        t = time.perf_counter()
        out = jax.block_until_ready(f(g0))
        first = time.perf_counter() - t
        times, cpus = [], []
        for _ in range(req["repeats"]):
            t, c = time.perf_counter(), time.process_time()
            out = jax.block_until_ready(f(g0))
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        return first, times, cpus, out

    fwd_first, fwd_times, fwd_cpus, L = first_and_times(forward)
    rss_fwd = _peak_rss_mib()
    grad_first, grad_times, grad_cpus, G = first_and_times(grad)
    rss = _peak_rss_mib()

    V = np.asarray(jax.jit(lambda g: traces(g, False))(g0))  # spike check (not timed)
    if V.shape != (n, steps + 1):
        raise RuntimeError(f"Jaxley recorded {V.shape}, expected {(n, steps + 1)}.")
    finite = np.isfinite(V).all(axis=1)  # Jaxley's HH rates are 0/0 at V = −40 or −55 mV exactly
    th = p["V_th"]
    up = (V[:, :-1] < th) & (V[:, 1:] >= th)
    counts = up.sum(axis=1)
    out = dict(version=jx.__version__, jax_version=jax.__version__, solver=solver, layout=layout,
               checkpoint_lengths=list(ckpt), steps=steps, area_um2=area,
               current_nA=(i_nA.tolist() if n <= 10 else [float(i_nA[0]), float(i_nA[-1])]),
               build_s=build_s, compile_s=grad_first, times_s=grad_times, cpu_s=grad_cpus,
               forward_compile_s=fwd_first, forward_times_s=fwd_times, forward_cpu_s=fwd_cpus,
               peak_rss_mb=rss, peak_rss_forward_mb=rss_fwd, loss=float(L),
               loss_finite=bool(np.isfinite(float(L))), nonfinite_cells=int(n - finite.sum()),
               grad=[float(x) for x in G], grad_finite=bool(np.all(np.isfinite(np.asarray(G)))),
               result_dtype=str(G.dtype),
               spike_counts=counts.tolist() if n <= 1000 else int(counts.sum()))
    if n == 1:  # spike times (linear interpolation of the crossing), ms
        k = np.nonzero(up[0])[0]
        out["spike_times"] = ((k + (th - V[0, k]) / (V[0, k + 1] - V[0, k])) * dt).tolist()
        out["V_min_max"] = [float(V.min()), float(V.max())]
    return out


PEERS = {"numba": numba_peer, "brainpy": brainpy_peer, "brian2": brian2_peer, "neuron": neuron_peer}
GRAD_PEERS = {"jaxley": jaxley_grad_peer}  # request kind "grad"


def versions():
    import importlib.metadata as md

    out = {}
    for name, dist in (("numba", "numba"), ("brainpy", "brainpy"), ("brian2", "Brian2"),
                       ("neuron", "neuron"), ("jaxley", "jaxley")):
        try:
            out[name] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    req = json.loads(sys.argv[1])
    if req.get("versions"):
        print(json.dumps(versions()))
    elif req.get("kind") == "grad":
        req["steps"] = int(round(req["duration"] / req["dt"]))
        print(json.dumps(GRAD_PEERS[req["peer"]](req)))
    else:
        req["steps"] = int(round(req["duration"] / req["dt"]))
        print(json.dumps(PEERS[req["peer"]](req)))
