"""Markdown table, done-when ratios and the throughput plot of a benchmark result."""

import json
import statistics
from pathlib import Path


def _fmt_rate(x):
    return f"{x / 1e6:.1f} M"


def _ours(rows, n, dtype="float32"):
    c = [r for r in rows if r["impl"] in ("hh_jax.simulate", "hh_jax.simulate_sharded")
         and r["method"] == "exp_euler"
         and r["n"] == n and r["dtype"] == dtype and "skipped" not in r]
    return max(c, key=lambda r: r["neuron_steps_per_s"]) if c else None


def _best_peer(rows, n, dtype="float32"):
    c = [r for r in rows if not r["impl"].startswith(("hh_jax", "plain")) and r["n"] == n
         and "skipped" not in r and (r["dtype"] == dtype or r["impl"].startswith("neuron"))]
    return max(c, key=lambda r: r["neuron_steps_per_s"]) if c else None


def done_when(result):
    rows, out = result["rows"], []
    for n, need in ((10**4, 2.0), (10**5, 2.0), (1, 1.5)):
        o, p = _ours(rows, n), _best_peer(rows, n)
        if o and p:
            ratio = o["neuron_steps_per_s"] / p["neuron_steps_per_s"]
            out.append((f"N = {n} f32: hh_jax ({o['impl'].split('.')[-1]}) / fastest peer "
                        f"({p['impl']} {p['method']}) ≥ {need}", f"{ratio:.2f}×", ratio >= need))
    for r in rows:
        if r["impl"] in ("hh_jax.simulate", "hh_jax.simulate_sharded") and r["n"] >= 10**4 and r["method"] == "exp_euler":
            out.append((f"CPU/wall ≥ 1.8, {r['impl'].split('.')[-1]}, N = {r['n']} {r['dtype']}",
                        f"{r['cpu_wall']:.2f}", r["cpu_wall"] >= 1.8))
    fc = result["first_call"]["median_s"]
    out.append(("first call (trace + compile + run) of the default simulate ≤ 0.5 s (after JAX start-up)", f"{fc:.2f} s", fc <= 0.5))
    for name, b in result.get("big", {}).items():
        ok = "error" not in b
        out.append((name, f"{b['wall_s']:.1f} s, peak RSS {b['peak_rss_mib']:.0f} MiB" if ok else "failed", ok))
    return out


def markdown(result, command):
    env, rows = result["environment"], result["rows"]
    sizes = sorted({r["n"] for r in rows if "skipped" not in r})
    keys = []
    for r in rows:
        k = (r["impl"], r["method"], r["dtype"])
        if "skipped" not in r and k not in keys:
            keys.append(k)
    lines = [f"Command: `{command}`  ", f"Date: {env['date']}; {env['cores']} cores ({env['cpu']}), "
             f"{env['platform']}; backend {env['backend']} with {len(env['devices'])} device(s); "
             f"jax {env['versions']['jax']}, equinox {env['versions']['equinox']}, "
             f"hh_jax {env['hh_jax']}; peers {env['peers'] or 'none'}.", "",
             "Neuron-steps per second (median of repeats; 10⁴ steps of 0.01 ms, 10³ for N = 10⁶; "
             "spike counts only). In brackets: CPU/wall.", "",
             "| implementation | method | dtype | " + " | ".join(f"N = {n}" for n in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for k in keys:
        cells = []
        for n in sizes:
            r = [x for x in rows if (x["impl"], x["method"], x["dtype"]) == k and x["n"] == n and "skipped" not in x]
            cells.append(f"{_fmt_rate(r[0]['neuron_steps_per_s'])} ({r[0]['cpu_wall']:.1f})" if r else "–")
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(cells) + " |")
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{r['impl']} ({r['skipped']})" for r in skipped)]
    lines += ["", "First-call (trace + compile + first run) times, N = 10⁴, f32:", ""]
    for r in rows:
        if r["n"] == 10**4 and r["dtype"] == "float32" and "skipped" not in r:
            lines.append(f"- {r['impl']} {r['method']}: {r['first_call_s']:.2f} s")
    fc, g = result["first_call"], result["gradient"]
    lines += ["", f"Default `simulate` first call in a fresh process (N = 1, 10⁴ steps, record V), "
              f"after JAX's one-time start-up ({fc['jax_startup_s']:.2f} s, a trivial jitted function): "
              f"median {fc['median_s']:.2f} s of {[round(t, 2) for t in fc['times_s']]}.",
              f"Gradient / forward time (N = {g['n']}, {g['steps']} steps, f32, jax.grad w.r.t. "
              f"HHParams): {g['ratio']:.1f} ({g['grad_s']:.3f} s / {g['forward_s']:.3f} s).", "",
              "| done-when criterion | measured | holds |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {'yes' if c else 'NO'} |" for a, b, c in done_when(result)]
    return "\n".join(lines) + "\n"


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, dtype in zip(axes, ("float32", "float64")):
        keys = []
        for r in result["rows"]:
            if "skipped" not in r and r["dtype"] in (dtype,) and (r["impl"], r["method"]) not in keys:
                keys.append((r["impl"], r["method"]))
        for impl, method in keys:
            rs = sorted((r for r in result["rows"] if "skipped" not in r and r["impl"] == impl
                         and r["method"] == method and r["dtype"] == dtype), key=lambda r: r["n"])
            style = "-o" if impl.startswith("hh_jax") else "--s"
            ax.loglog([r["n"] for r in rs], [r["neuron_steps_per_s"] for r in rs], style,
                      label=f"{impl} {method}", ms=4)
        ax.set(title=dtype, xlabel="neurons N", ylabel="neuron-steps / s")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out, name: str, result: dict, text: str) -> None:
    """Write ``OUT/NAME.json`` (the result) and ``OUT/NAME.md`` (`text`), and print the markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    (out / f"{name}.md").write_text(text)
    print(text)
