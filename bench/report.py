#!/usr/bin/python3
"""Summaries, aggregation over repetitions, verdicts, markdown and gnuplot plots.

    bench/report.py RESULTS_DIR     re-writes RESULTS_DIR/report.md and the PNGs from
                                    RESULTS_DIR/results.json
"""
import json
import os
import shutil
import statistics
import subprocess
import sys


# --------------------------------------------------------------------------------------
# Latency: wrk reports a grid of percentiles per run; runs are merged by treating each as a
# piecewise-linear distribution through its grid and solving for the mixture's quantile.

class LatencyMix:
    def __init__(self):
        self.parts = []  # (count, [(p in 0..1, value_us)])

    def add(self, wrk):
        n = wrk["requests"]
        lat = wrk["latency"]
        if n <= 0 or not lat["pct"]:
            return
        pts = [(0.0, float(lat["min"]))]
        for p, v in sorted(lat["pct"]):
            pts.append((p / 100.0, float(max(v, pts[-1][1]))))
        pts.append((1.0, float(max(lat["max"], pts[-1][1]))))
        self.parts.append((n, pts))

    @staticmethod
    def _cdf(pts, x):
        if x < pts[0][1]:
            return 0.0
        if x >= pts[-1][1]:
            return 1.0
        lo, hi = 0, len(pts) - 1
        while hi - lo > 1:  # last point with value <= x
            mid = (lo + hi) // 2
            if pts[mid][1] <= x:
                lo = mid
            else:
                hi = mid
        (p0, v0), (p1, v1) = pts[lo], pts[lo + 1]
        if v1 <= v0:
            return p1
        return p0 + (p1 - p0) * (x - v0) / (v1 - v0)

    def quantile(self, q):
        if not self.parts:
            return float("nan")
        total = sum(n for n, _ in self.parts)
        lo = min(pts[0][1] for _, pts in self.parts)
        hi = max(pts[-1][1] for _, pts in self.parts)
        for _ in range(60):
            mid = (lo + hi) / 2
            if sum(n * self._cdf(pts, mid) for n, pts in self.parts) >= q * total:
                hi = mid
            else:
                lo = mid
        return hi


# --------------------------------------------------------------------------------------
# One cache / hot-spot run

def _interp(samples, t):
    """Cumulative counters per worker at time t (linear between samples)."""
    if not samples:
        return {}
    if t <= samples[0][0]:
        return dict(samples[0][1])
    for (ta, a), (tb, b) in zip(samples, samples[1:]):
        if ta <= t <= tb:
            f = 0.0 if tb == ta else (t - ta) / (tb - ta)
            out = {}
            for w in set(a) | set(b):
                va = a.get(w, (0, 0, 0, 0))
                vb = b.get(w, va)
                out[w] = tuple(x + (y - x) * f for x, y in zip(va, vb))
            return out
    return dict(samples[-1][1])


def _delta(samples, t0, t1):
    a, b = _interp(samples, t0), _interp(samples, t1)
    out = {}
    for w in b:
        va = a.get(w, (0, 0, 0, 0))
        out[w] = tuple(y - x for x, y in zip(va, b[w]))
    return out


def _hit(d):
    h = sum(v[1] for v in d.values())
    m = sum(v[2] for v in d.values())
    return h / (h + m) if h + m else None


def summarize_cache(phases, segs, samples, events, workload):
    out = {"phases": {}, "events": events, "series": {}}
    for ph in phases:
        ss = [s for s in segs if s["phase"] == ph["name"]]
        reqs = sum(s["wrk"]["requests"] for s in ss)
        bad = sum(s["wrk"]["errors"]["status"] for s in ss)
        errs = {k: sum(s["wrk"]["errors"][k] for s in ss) for k in ss[0]["wrk"]["errors"]} \
            if ss else {}
        dur = sum(s["wrk"]["duration_us"] for s in ss) / 1e6
        lat = LatencyMix()
        for s in ss:
            lat.add(s["wrk"])
        d = _delta(samples, ph["t0"], ph["t1"])
        steady_from = ph["change_at"] if ph["change_at"] is not None else ph["t0"]
        dl = _delta(samples, steady_from, ph["t1"])
        loads = [dl.get(w, (0, 0, 0, 0))[3] for w in ph["workers"]]
        mean = sum(loads) / len(loads) if loads else 0
        out["phases"][ph["name"]] = dict(
            t0=round(ph["t0"], 2), t1=round(ph["t1"], 2), change_at=ph["change_at"],
            seconds=round(dur, 2), requests=reqs, errors=errs, rps=(reqs - bad) / dur if dur else 0,
            p50_ms=lat.quantile(0.5) / 1000, p99_ms=lat.quantile(0.99) / 1000,
            hit_rate=_hit(d), busiest_over_mean=(max(loads) / mean) if mean else None,
            worker_requests={w: int(dl.get(w, (0, 0, 0, 0))[3]) for w in ph["workers"]})
    st = out["phases"].get("stationary", {}).get("hit_rate")
    for ph in phases:
        if ph["change_at"] is None or st is None:
            continue
        # Recovery: from the change until the hit rate stays within 5 % (relative) of the
        # stationary phase's: the end of the last 1-s bin below 0.95 x stationary.
        t, last_bad, nbins = ph["change_at"], None, 0
        while t + 1.0 <= ph["t1"] + 1e-6:
            h = _hit(_delta(samples, t, t + 1.0))
            nbins += 1
            if h is None or h < 0.95 * st:
                last_bad = t + 1.0
            t += 1.0
        p = out["phases"][ph["name"]]
        if nbins == 0:
            p["recovery_s"] = None
        elif last_bad is None:
            p["recovery_s"] = 0.0
        elif last_bad + 1.0 > ph["t1"]:
            p["recovery_s"] = None  # still below at the end of the phase
            p["recovery_note"] = "not within the phase (%.0f s)" % (ph["t1"] - ph["change_at"])
        else:
            p["recovery_s"] = round(last_bad - ph["change_at"], 1)
    # time series: 1-s bins of hit rate and served requests; p99 per wrk segment
    if samples:
        t, tend = 0.0, samples[-1][0]
        ser = []
        while t + 1.0 <= tend + 1e-6:
            d = _delta(samples, t, t + 1.0)
            ser.append([round(t + 0.5, 2), _hit(d), sum(v[3] for v in d.values())])
            t += 1.0
        out["series"]["bins"] = ser
    segser = []
    for s in segs:
        lat = LatencyMix()
        lat.add(s["wrk"])
        segser.append([round((s["t0"] + s["t1"]) / 2, 2), lat.quantile(0.99) / 1000,
                       s["wrk"]["requests"] / max(1e-9, s["wrk"]["duration_us"] / 1e6)])
    out["series"]["segments"] = segser
    out["phase_bounds"] = [[p["name"], round(p["t0"], 2)] for p in phases]
    total_req = sum(s["wrk"]["requests"] for s in segs)
    # socket errors are reported per phase; wrk's reconnect loop inflates them during a
    # restart, so only non-2xx answers and timeouts count as failure
    total_err = sum(s["wrk"]["errors"]["status"] + s["wrk"]["errors"]["timeout"] for s in segs)
    total_hm = sum(v[1] + v[2] for v in (samples[-1][1].values() if samples else []))
    if total_req == 0:
        out["failed"] = "no request served"
    elif total_hm == 0:
        out["failed"] = "workers reported no cache accesses"
    elif total_err > 0.05 * total_req:
        out["failed"] = "errors: %d of %d requests" % (total_err, total_req)
    return out


def one_line(res):
    if res["workload"] == "hello":
        s = "%.0f req/s p50 %.2f ms p99 %.2f ms workers CPU %.3f s/1000 req" % (
            res["rps"], res["p50_ms"], res["p99_ms"], res["workers_cpu_per_1000"])
        if "lb_cpu_per_1000" in res:
            s += " LB CPU %.3f s/1000 req" % res["lb_cpu_per_1000"]
        return s
    parts = []
    for name, p in res["phases"].items():
        if name == "warmup":
            continue
        hr = p["hit_rate"]
        parts.append("%s %.0f/s hit %s p99 %.0fms%s" % (
            name, p["rps"], "-" if hr is None else "%.2f" % hr, p["p99_ms"],
            "" if "recovery_s" not in p else " rec %s" % (
                "-" if p["recovery_s"] is None else "%.0fs" % p["recovery_s"])))
    return "; ".join(parts)


# --------------------------------------------------------------------------------------
# Aggregation

PHASES = ["stationary", "shift", "add", "remove"]
HELLO_PEERS = ["haproxy-rr", "haproxy-leastconn", "nginx-leastconn", "gunicorn-haproxy"]
CACHE_PEERS = ["haproxy-rr", "haproxy-leastconn", "haproxy-hash", "nginx-leastconn",
               "nginx-hash"]


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals)


def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return (min(vals), max(vals))


def group(results):
    g = {}
    for r in results["runs"]:
        g.setdefault((r["workload"], r["system"]), []).append(r)
    return g


def agg_metric(runs, getter):
    vals = []
    for r in runs:
        if r.get("failed"):
            continue
        try:
            vals.append(getter(r))
        except (KeyError, TypeError):
            vals.append(None)
    real = [v for v in vals if v is not None]
    return {"median": med(vals), "min": min(real) if real else None,
            "max": max(real) if real else None, "n": len(real), "values": vals}


def aggregate(results):
    g = group(results)
    agg = {"hello": {}, "cache": {}, "hot": {}}
    for (wl, sysname), runs in g.items():
        if wl == "hello":
            agg["hello"][sysname] = {m: agg_metric(runs, lambda r, m=m: r[m]) for m in
                                     ("rps", "p50_ms", "p99_ms", "lb_cpu_per_1000",
                                      "workers_cpu_per_1000")}
        else:
            d = {}
            phs = PHASES if wl == "cache" else ["stationary"]
            for ph in phs:
                d[ph] = {m: agg_metric(runs, lambda r, m=m, ph=ph: r["phases"][ph][m])
                         for m in ("rps", "hit_rate", "p50_ms", "p99_ms", "busiest_over_mean",
                                   "recovery_s")}
            agg[wl][sysname] = d
    # The HAProxy consistent-hash family at its best balance factor: the one the sweep kept
    # for the later repetitions (most runs), else the highest median stationary req/s.
    for wl in ("cache", "hot"):
        fam = {k: v for k, v in agg[wl].items() if k.startswith("haproxy-hash-")}
        if fam:
            best = max(fam, key=lambda k: (fam[k]["stationary"]["rps"]["n"],
                                           fam[k]["stationary"]["rps"]["median"] or -1))
            agg[wl]["haproxy-hash"] = dict(fam[best], best_of=best)
    return agg


def _m(agg, wl, sysname, ph, metric):
    try:
        if ph is None:
            return agg[wl][sysname][metric]["median"]
        return agg[wl][sysname][ph][metric]["median"]
    except KeyError:
        return None


def best_peer(agg, wl, ph, peers):
    cands = [(p, _m(agg, wl, p, ph, "rps")) for p in peers]
    cands = [(p, v) for p, v in cands if v is not None]
    if not cands:
        return None, None
    return max(cands, key=lambda pv: pv[1])


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def newest_worker_shares(results):
    """{system: [newest worker's requests / mean worker's, per repetition]} in the add phase
    (the worker added is the last in worker_requests' order, w4 of w0..w4)."""
    out = {}
    for r in results["runs"]:
        if r.get("workload") != "cache":
            continue
        w = r.get("phases", {}).get("add", {}).get("worker_requests")
        if not w:
            continue
        names = sorted(w, key=lambda n: (len(n), n))
        mean = sum(w.values()) / len(w)
        if mean > 0:
            out.setdefault(r["system"], []).append(w[names[-1]] / mean)
    return out


# The résumé LB configurations the verdicts and ratios are given for.
ME_SYSTEMS = ("resumelb", "resumelb-balanced", "resumelb-variance-1")
ME_NOTES = {"resumelb": " (zc.resumelb's rule, resumelb's default variance 4)",
            "resumelb-balanced": " (the default pool)"}


def verdicts(agg, me="resumelb"):
    """The targets, for the résumé LB configuration `me`."""
    v = []

    def add(target, value, ok, detail):
        v.append(dict(target=target, value=value, ok=ok, detail=detail.replace(
            "resumelb ", me + " ", 1)))

    # hello
    if me in agg["hello"]:
        r = _m(agg, "hello", me, None, "rps")
        bp, bv = best_peer(agg, "hello", None, HELLO_PEERS)
        x = _ratio(r, bv)
        add("hello: throughput >= 2x best peer LB", x, x is not None and x >= 2.0,
            "resumelb %s req/s vs %s %s req/s" % (_f(r, 0), bp, _f(bv, 0)))
        d = _m(agg, "hello", "uwsgi-direct", None, "rps")
        x = _ratio(r, d)
        add("hello: throughput >= 0.6x direct keep-alive ceiling", x, x is not None and x >= 0.6,
            "resumelb %s req/s vs uwsgi-direct %s req/s" % (_f(r, 0), _f(d, 0)))
        c = _m(agg, "hello", me, None, "lb_cpu_per_1000")
        peers_cpu = [(p, _m(agg, "hello", p, None, "lb_cpu_per_1000")) for p in HELLO_PEERS]
        peers_cpu = [(p, x) for p, x in peers_cpu if x is not None]
        if peers_cpu and c is not None:
            bp, bc = min(peers_cpu, key=lambda px: px[1])
            x = _ratio(c, bc)
            add("hello: LB CPU per 1000 requests <= 0.5x best peer's", x, x <= 0.5,
                "resumelb %.3f s vs %s %.3f s" % (c, bp, bc))
    if me in agg["cache"]:
        r = _m(agg, "cache", me, "stationary", "rps")
        o = _m(agg, "cache", "oracle", "stationary", "rps")
        x = _ratio(r, o)
        add("cache stationary: throughput >= 0.95x oracle", x, x is not None and x >= 0.95,
            "resumelb %s req/s vs oracle %s req/s" % (_f(r, 0), _f(o, 0)))
        bp, bv = best_peer(agg, "cache", "stationary", CACHE_PEERS)
        x = _ratio(r, bv)
        add("cache stationary: throughput >= 1.3x best peer", x, x is not None and x >= 1.3,
            "resumelb %s req/s vs %s %s req/s" % (_f(r, 0), _pn(agg, "cache", bp), _f(bv, 0)))
        rp = _m(agg, "cache", me, "stationary", "p99_ms")
        pp = _m(agg, "cache", bp, "stationary", "p99_ms") if bp else None
        x = _ratio(rp, pp)
        add("cache stationary: p99 <= best peer's", x, x is not None and x <= 1.0,
            "resumelb %s ms vs %s %s ms" % (_f(rp, 1), _pn(agg, "cache", bp), _f(pp, 1)))
        r = _m(agg, "cache", me, "shift", "rps")
        o = _m(agg, "cache", "oracle", "shift", "rps")
        x = _ratio(r, o)
        add("after shift: throughput >= 1.25x oracle's", x, x is not None and x >= 1.25,
            "resumelb %s req/s vs oracle %s req/s" % (_f(r, 0), _f(o, 0)))
        rr = _m(agg, "cache", me, "shift", "recovery_s")
        prs = [(p, _m(agg, "cache", p, "shift", "recovery_s")) for p in CACHE_PEERS
               if p in agg["cache"]]
        known = [(p, x) for p, x in prs if x is not None]
        ok = rr is not None and all(rr < x for _, x in known)
        if rr is not None and not ok and all(rr <= x for _, x in known):
            ok = "tie"
        add("after shift: faster hit-rate recovery than any peer", rr, ok,
            "resumelb %s; peers: %s" % (_rec(rr), ", ".join("%s %s" % (_pn(agg, "cache", p),
                                                                      _rec(x)) for p, x in prs)))
    if me in agg["hot"]:
        r = _m(agg, "hot", me, "stationary", "rps")
        bp, bv = best_peer(agg, "hot", "stationary", CACHE_PEERS)
        x = _ratio(r, bv)
        add("hot spot: throughput >= 1.3x best peer", x, x is not None and x >= 1.3,
            "resumelb %s req/s vs %s %s req/s" % (_f(r, 0), _pn(agg, "hot", bp), _f(bv, 0)))
        rp = _m(agg, "hot", me, "stationary", "p99_ms")
        np_ = _m(agg, "hot", "nginx-hash", "stationary", "p99_ms")
        x = _ratio(rp, np_)
        add("hot spot: p99 <= 0.5x nginx consistent hashing's", x, x is not None and x <= 0.5,
            "resumelb %s ms vs nginx-hash %s ms" % (_f(rp, 1), _f(np_, 1)))
    return v


def _f(x, nd):
    return "-" if x is None else ("%." + str(nd) + "f") % x


def _rec(x):
    return "not recovered" if x is None else "%.0f s" % x


def _pn(agg, wl, name):
    if name == "haproxy-hash" and name in agg.get(wl, {}):
        return "haproxy-hash (best: %s)" % agg[wl][name]["best_of"].replace("haproxy-hash-", "")
    return name or "-"


# --------------------------------------------------------------------------------------
# Markdown

def _cell(a, nd, pct=False):
    if a is None or a["median"] is None:
        return "-"
    k = 100.0 if pct else 1.0
    s = ("%." + str(nd) + "f") % (a["median"] * k)
    if a["n"] > 1 and a["min"] is not None:
        s += " (%s–%s)" % (("%." + str(nd) + "f") % (a["min"] * k),
                           ("%." + str(nd) + "f") % (a["max"] * k))
    return s


def _rec_cell(a):
    if a is None:
        return "-"
    vals = a["values"]
    if not vals:
        return "-"
    txt = ["n/r" if v is None else "%.0f" % v for v in vals]
    m = a["median"]
    if sum(1 for v in vals if v is None) * 2 > len(vals):
        head = "n/r"
    else:
        head = "-" if m is None else "%.0f" % m
    return head + (" (%s)" % ", ".join(txt) if len(vals) > 1 else "")


def markdown(results, agg, outdir, plots):
    p = results["params"]
    m = results["machine"]
    L = []
    L.append("# resumelb benchmark report (%s mode)" % results["mode"])
    L.append("")
    L.append("Started %s, %s s, %d repetition(s); git %s%s." % (
        results["started"], results.get("elapsed_s"), p["reps"], m.get("git"),
        " (LB sources modified)" if m.get("git_dirty_lb_sources") else ""))
    L.append("")
    L.append("Machine: %s CPUs (%s), %s MiB, kernel %s; load average at start %s." % (
        m["cpus"], m.get("cpu_model", "?"), m.get("mem_total_kb", 0) // 1024, m.get("kernel"),
        " ".join(m["loadavg_start"])))
    if m.get("top_processes_at_start"):
        L.append("Busiest processes at start (%%CPU command): %s." %
                 "; ".join(m["top_processes_at_start"][:6]))
    L.append("Versions: %s." % "; ".join("%s" % v for v in m["versions"].values() if v))
    L.append("")
    L.append("Parameters: %d worker processes x %d threads for every system; cache: %d sites, "
             "%d objects each, %d objects per request, Zipf %.2f (hot spot %.2f), per-worker LRU "
             "of %d entries (%.2f x working set / workers), %.1f ms per request + %.1f ms per "
             "miss, wrk %d connections; hello: wrk %d connections. zkworker history %d." % (
                 p["workers"], p["threads"], p["sites"], p["objects"], p["k"], p["zipf"],
                 p["hot_zipf"], int(-(-p["cache_factor"] * p["sites"] * p["objects"] //
                                      p["workers"])),
                 p["cache_factor"], p["base_ms"], p["miss_ms"], p["cache_conns"],
                 p["hello_conns"], p["zk_history"]))
    L.append("")
    L.append("Cells: median over repetitions (min–max).")
    L.append("")
    if results["failures"]:
        L.append("**Failures:** " + "; ".join(results["failures"]))
        L.append("")
    for me in ME_SYSTEMS:
        v = verdicts(agg, me)
        if not v:
            continue
        L.append("## Verdicts: %s%s" % (me, ME_NOTES.get(me, "")))
        L.append("")
        L.append("| target | measured | met | detail |")
        L.append("|---|---|---|---|")
        for x in v:
            val = x["value"]
            sval = "-" if val is None else ("%.2f" % val)
            if x["target"].startswith("after shift: faster"):
                sval = _rec(val)
            met = "tie" if x["ok"] == "tie" else "yes" if x["ok"] else "**no**"
            L.append("| %s | %s | %s | %s |" % (x["target"], sval, met,
                                               x["detail"]))
        L.append("")
    if agg["hello"]:
        L.append("## hello")
        L.append("")
        L.append("| system | req/s | p50 ms | p99 ms | LB CPU s / 1000 req | "
                 "workers CPU s / 1000 req |")
        L.append("|---|---|---|---|---|---|")
        order = sorted(agg["hello"], key=lambda s: -(agg["hello"][s]["rps"]["median"] or 0))
        for s in order:
            a = agg["hello"][s]
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                s, _cell(a["rps"], 0), _cell(a["p50_ms"], 2), _cell(a["p99_ms"], 2),
                _cell(a["lb_cpu_per_1000"], 3), _cell(a["workers_cpu_per_1000"], 3)))
        L.append("")
    for wl, title in (("cache", "cache"), ("hot", "hot spot")):
        if not agg[wl]:
            continue
        L.append("## %s" % title)
        L.append("")
        phs = PHASES if wl == "cache" else ["stationary"]
        for ph in phs:
            L.append("### %s" % ph if wl == "cache" else "### measured phase")
            L.append("")
            rec = ph in ("shift", "add", "remove")
            L.append("| system | req/s | hit % | p50 ms | p99 ms | busiest/mean |" +
                     (" recovery s |" if rec else ""))
            L.append("|---|---|---|---|---|---|" + ("---|" if rec else ""))
            names = [s for s in agg[wl] if s != "haproxy-hash"]
            names.sort(key=lambda s: -(agg[wl][s].get(ph, {}).get("rps", {}).get("median") or 0))
            for s in names:
                a = agg[wl][s].get(ph)
                if not a:
                    continue
                L.append("| %s | %s | %s | %s | %s | %s |" % (
                    s, _cell(a["rps"], 0), _cell(a["hit_rate"], 1, pct=True), _cell(a["p50_ms"], 1),
                    _cell(a["p99_ms"], 1), _cell(a["busiest_over_mean"], 2)) +
                    (" %s |" % _rec_cell(a["recovery_s"]) if rec else ""))
            L.append("")
            if wl == "cache" and ph == "add":
                shares = newest_worker_shares(results)
                if shares:
                    L.append("Newest worker's requests / the mean worker's over the phase, per "
                             "repetition: " + "; ".join(
                                 "%s %s" % (s, ", ".join("%.2f" % x for x in v))
                                 for s, v in sorted(shares.items())) + ".")
                    L.append("")
            bp, bv = best_peer(agg, wl, ph, CACHE_PEERS)
            for me in ME_SYSTEMS:
                if me not in agg[wl]:
                    continue
                r = _m(agg, wl, me, ph, "rps")
                o = _m(agg, wl, "oracle", ph, "rps")
                rp = _m(agg, wl, me, ph, "p99_ms")
                pp = _m(agg, wl, bp, ph, "p99_ms") if bp else None
                L.append("* %s / best peer (%s): throughput %s, p99 %s; %s / oracle: "
                         "throughput %s." % (me, _pn(agg, wl, bp), _f(_ratio(r, bv), 2),
                                             _f(_ratio(rp, pp), 2), me, _f(_ratio(r, o), 2)))
            L.append("")
    for name, cap in plots:
        L.append("![%s](%s)" % (cap, name))
        L.append("")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------------------
# Plots (gnuplot)

PLOT_SYSTEMS = ["resumelb", "resumelb-balanced", "resumelb-variance-1", "resumelb-classless", "haproxy-rr", "haproxy-leastconn",
                "haproxy-hash", "nginx-leastconn", "nginx-hash", "oracle"]


STYLE = {"resumelb": ("#7b1fa2", 1), "resumelb-variance-1": ("#00897b", 1),
         "resumelb-balanced": ("#d81b60", 2),
         "resumelb-classless": ("#64b5f6", 1), "haproxy-rr": ("#ff9800", 1),
         "haproxy-leastconn": ("#c0a000", 1), "haproxy-hash": ("#1565c0", 1),
         "nginx-leastconn": ("#e53935", 1), "nginx-hash": ("#000000", 1),
         "oracle": ("#8d6e63", 2)}


def plots(results, agg, outdir):
    if not shutil.which("gnuplot"):
        return []
    for fn in os.listdir(outdir):  # stale data of an earlier rendering
        if fn.startswith("plot-") and fn.endswith(".dat"):
            os.unlink(os.path.join(outdir, fn))
    made = []
    for wl in ("cache", "hot"):
        runs = {}
        for r in results["runs"]:
            if r["workload"] != wl or r.get("failed") or r["rep"] != 1:
                continue
            runs[r["system"]] = r
        if not runs:
            continue
        series = []
        for s in PLOT_SYSTEMS:
            name = s
            if s == "haproxy-hash":
                if "haproxy-hash" not in agg[wl]:
                    continue
                name = agg[wl]["haproxy-hash"]["best_of"]
            if name not in runs:
                continue
            r = runs[name]
            dat = "plot-%s-%s.dat" % (wl, name)  # relative: gnuplot runs in outdir
            seg = "plot-%s-%s-seg.dat" % (wl, name)
            with open(os.path.join(outdir, dat), "w") as f:
                for t, h, n in r["series"].get("bins", []):
                    f.write("%s %s %s\n" % (t, "NaN" if h is None else "%.4f" % (h * 100), n))
            with open(os.path.join(outdir, seg), "w") as f:
                for t, p99, rps in r["series"]["segments"]:
                    f.write("%s %.2f %.1f\n" % (t, p99, rps))
            series.append((name, dat, seg))
        if not series:
            continue
        bounds = next(iter(runs.values()))["phase_bounds"]
        arrows = "\n".join(
            'set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb "gray"\n'
            'set label "%s" at %s, graph 0.97 offset 0.3,0 font ",8"' % (t, t, n, t)
            for n, t in bounds)
        for kind, ylabel, col, fileidx, logy in (
                ("hitrate", "cache hit rate (%)", 2, 1, False),
                ("p99", "p99 latency per wrk run (ms)", 2, 2, True),
                ("throughput", "requests/s", 3, 2, False)):
            png = "%s-%s.png" % (wl, kind)
            gp = os.path.join(outdir, "%s-%s.gp" % (wl, kind))
            with open(gp, "w") as f:
                f.write('set terminal pngcairo size 1000,520 font ",10"\n')
                f.write('set output "%s"\n' % png)
                f.write('set xlabel "seconds since the start of warm-up"\nset ylabel "%s"\n' %
                        ylabel)
                f.write("set key outside right\nset grid\n")
                if logy:
                    f.write("set logscale y\n")
                f.write(arrows + "\n")
                plots_ = []
                for name, dat, seg in series:
                    src = dat if fileidx == 1 else seg
                    color, dash = STYLE.get(name.split("-hash-")[0] + (
                        "-hash" if "-hash-" in name else ""), ("#777777", 1))
                    plots_.append('"%s" using 1:%d with linespoints pt 7 ps 0.4 lw %s '
                                  'lc rgb "%s" dt %d title "%s"' %
                                  (src, col, 2 if name.startswith("resumelb") else 1, color,
                                   dash, name))
                f.write("plot " + ", \\\n  ".join(plots_) + "\n")
            subprocess.run(["gnuplot", os.path.basename(gp)], cwd=outdir, check=False)
            if os.path.exists(os.path.join(outdir, png)):
                made.append((png, "%s: %s over time (repetition 1)" % (wl, ylabel)))
    return made


def write_report(results, outdir, systems_meta=None):
    agg = aggregate(results)
    made = plots(results, agg, outdir)
    results_agg = dict(aggregate=agg, verdicts={me: verdicts(agg, me) for me in ME_SYSTEMS})
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(results_agg, f, indent=1, default=str)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(markdown(results, agg, outdir, made))


if __name__ == "__main__":
    d = sys.argv[1]
    with open(os.path.join(d, "results.json")) as f:
        write_report(json.load(f), d)
    print(os.path.join(d, "report.md"))
