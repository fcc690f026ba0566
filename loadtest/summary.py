#!/usr/bin/env python3
"""Turns loadtest/bench.sh's metrics.jsonl into the SPEC §8 table.

Usage: summary.py METRICS_JSONL SUMMARY_MD RESULTS_JSON
Prints the table (markdown) and writes it, plus all raw figures as JSON.
"""

import json
import sys


def load(path):
    m = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                m[rec["name"]] = rec["data"]
    return m


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.0f} %"


def verdict(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**MISSED**")


def rounds_of(run):
    """ " (rounds a / b)" for a metric summed from rounds, else nothing."""
    if not run or not run.get("rounds"):
        return ""
    return " (rounds " + " / ".join(fmt(x) for x in run["rounds"]) + ")"


def cpu_row(name, m):
    """Server CPU per request of floodgate's run NAME beside the constant
    handler's (const_NAME), both measured from /proc in the same turns."""
    f = (m.get(f"{name}_cpu") or {}).get("us_per_request", {})
    c = (m.get(f"const_{name}_cpu") or {}).get("us_per_request", {})
    return (f"{name}: CPU per request", f"floodgate {fmt(f.get('floodgate'), 1)} µs (+ Redis {fmt(f.get('redis'), 1)}, "
            f"Postgres {fmt(f.get('postgres'), 1)})", f"const_server {fmt(c.get('const_server'), 1)} µs", "",
            "(context)", "")


def goose_requests(path):
    """Per-request req/s and percentiles from goose's printed summary."""
    import re
    try:
        text = open(path).read()
    except OSError:
        return {}
    out = {}
    rate_part = text.split("=== PER REQUEST METRICS ===")[-1]
    for name, reqs, rps in re.findall(r"^ (\w+ \w+) +\| +([\d,]+) \| +[\d,]+ \([\d.]+%\) \| +([\d.,]+) \|",
                                      rate_part, re.M):
        out.setdefault(name, {})["rps"] = float(rps.replace(",", ""))
        out[name]["requests"] = int(reqs.replace(",", ""))
    pct_part = text.split("Slowest page load")[-1]
    for row in re.findall(r"^ (\w+ \w+) +\|((?: +[\d.,]+ \|){5} +[\d.,]+)$", pct_part, re.M):
        vals = [float(v.replace(",", "")) for v in row[1].replace("|", " ").split()]
        out.setdefault(row[0], {}).update({"p50_ms": vals[0], "p98_ms": vals[2], "p99_ms": vals[3]})
    return out


def main():
    metrics_path, md_path, json_path = sys.argv[1:4]
    m = load(metrics_path)
    import os
    g = goose_requests(os.path.join(os.path.dirname(metrics_path), "goose-hold.txt"))
    if g:
        m["goose_hold_requests"] = g
    rows = []
    machine = m.get("machine", {})

    def ratio(a, b):
        return a / b if a is not None and b else None

    # hold vs the pgbench claim ceiling: the best claim variant's last-window
    # throughput (pgbench_ceiling, loadtest/pg/claim_stats.py); runs from
    # before the variants have only pgbench_claim, whose mean was the ceiling.
    pg = m.get("pgbench_claim", {})
    ceil = m.get("pgbench_ceiling")
    if ceil:
        ceil_tps = ceil.get("tps_last_window")
        ceil_text = (f"pgbench claim ceiling {fmt(ceil_tps)}/s (variant {ceil.get('variant')}, last "
                     f"{fmt(ceil.get('window_s'))} s window; mean {fmt(ceil.get('tps_mean'))}/s, "
                     f"p99 {fmt(ceil.get('p99_ms'), 2)} ms)")
    else:
        ceil_tps = pg.get("tps")
        ceil_text = f"pgbench claim {fmt(ceil_tps)}/s (p99 {fmt(pg.get('p99_ms'), 2)} ms)"
    hold = m.get("hold")
    hold_rate = None
    if hold:
        created = hold["statuses"].get("201", 0)
        hold_rate = created / hold["duration_s"] if hold["duration_s"] else None
    def refused(run):
        # Any answer but 201 means the buyers' limits (or the units) ran out
        # during the run: the holds/s is then a lower bound, not the rate.
        n = sum(v for k, v in (run or {}).get("statuses", {}).items() if k != "201")
        return f"; {n:,} refused: the buyers ran out, so at least" if n else ""
    r = ratio(hold_rate, ceil_tps)
    rows.append(("hold (claim units), sale just created", f"{fmt(hold_rate)} holds/s (1 unit each{refused(hold)})",
                 ceil_text, pct(r), "≥ 80 %", verdict(None if r is None else r >= 0.8)))
    ha = m.get("hold_analyzed")
    ha_rate = ha["statuses"].get("201", 0) / ha["duration_s"] if ha and ha["duration_s"] else None
    r = ratio(ha_rate, ceil_tps)
    rows.append(("hold, after ANALYZE units", f"{fmt(ha_rate)} holds/s (p99 {fmt(ha and ha['p99_ms'], 1)} ms{refused(ha)})",
                 "same", pct(r), "≥ 80 %", verdict(None if r is None else r >= 0.8)))
    p99 = hold["p99_ms"] if hold else None
    rows.append(("hold p99", f"{fmt(p99, 1)} ms at {machine.get('concurrency', '?')} connections", "", "",
                 "< 50 ms", verdict(None if p99 is None else p99 < 50)))
    # SPEC §8's own measure: holds arriving at the admitted rate, open loop;
    # once before the saturating wrk hold runs (the verdict) and once after
    # them (context: Postgres still digesting them).
    for key, when, target in (("hold_rate", "before the saturating runs", "< 50 ms"),
                              ("hold_rate_after", "after the saturating runs", "(context)")):
        hr = m.get(key)
        if not hr:
            continue
        slow = ", ".join(f"{x['second']} ({x['max_ms']:.0f} ms)" for x in hr.get("slow_seconds", []))
        rows.append((f"hold p99 at the admitted rate ({fmt(hr.get('rate'))}/s, open loop, `fgdrive hold-rate`), {when}",
                     f"{fmt(hr.get('p99_ms'), 1)} ms (p50 {fmt(hr.get('p50_ms'), 1)}, p95 {fmt(hr.get('p95_ms'), 1)}, "
                     f"max {fmt(hr.get('max_ms'), 1)} ms; {fmt(hr.get('count'))} holds, {fmt(hr.get('achieved_per_s'))}/s; "
                     f"statuses {hr.get('statuses')}; seconds with an answer ≥ 50 ms: {slow or 'none'})",
                     "", "", target,
                     verdict(None if hr.get("p99_ms") is None else hr["p99_ms"] < 50) if target != "(context)" else ""))

    gh, gw = g.get("POST hold", {}), g.get("POST webhook", {})
    if gh:
        rows.append(("hold + pay (goose `hold`, 16 buyers, while the availability read runs)",
                     f"{fmt(gh.get('rps'))} buyers/s; hold p50 {fmt(gh.get('p50_ms'), 0)} ms, p99 "
                     f"{fmt(gh.get('p99_ms'), 0)} ms; webhook p50 {fmt(gw.get('p50_ms'), 0)} ms, p99 "
                     f"{fmt(gw.get('p99_ms'), 0)} ms", "", "", "hold p99 < 50 ms",
                     verdict(None if gh.get("p99_ms") is None else gh["p99_ms"] < 50)))

    # join vs constant handler
    cj, j = m.get("const_join"), m.get("join")
    r = ratio(j and j["rps"], cj and cj["rps"])
    rows.append(("join queue (rounds in turns with the constant handler)", f"{fmt(j and j['rps'])} req/s{rounds_of(j)}",
                 f"constant handler {fmt(cj and cj['rps'])} req/s{rounds_of(cj)}",
                 pct(r), "≥ 60 %", verdict(None if r is None else r >= 0.6)))
    rows.append(cpu_row("join", m))
    rows.append(("join p99", f"{fmt(j and j['p99_ms'], 1)} ms", f"constant {fmt(cj and cj['p99_ms'], 1)} ms", "",
                 "< 20 ms", verdict(None if not j else j["p99_ms"] < 20)))

    # join with proof of work vs join without, same duration, same run
    jp, jo = m.get("join_pow"), m.get("join_pow_off")
    bits = m.get("pow_bits", {})
    if jp and jo:
        r = ratio(jp["rps"], jo["rps"])
        rounds = lambda d: " / ".join(fmt(x) for x in d.get("rounds", []))
        rows.append((f"join with proof of work ({bits.get('bench')} bits, pre-solved; non-2xx {jp['non2xx']})",
                     f"{fmt(jp['rps'])} req/s (rounds {rounds(jp)}; p99 {fmt(jp['p99_ms'], 1)} ms)",
                     f"the same bodies to a sale without it {fmt(jo['rps'])} req/s (rounds {rounds(jo)}; "
                     f"p99 {fmt(jo['p99_ms'], 1)} ms)",
                     pct(r), "≥ 90 %", verdict(r >= 0.9 and jp["non2xx"] == 0)))
    for key, what in [("price_0", "difficulty 0"),
                      ("price_demo", f"demo {bits.get('demo')} bits, no rise"),
                      ("price_demo_rise", f"demo {bits.get('demo')} bits, adaptive rise to {bits.get('cap')}"),
                      ("price_cap", f"the cap, {bits.get('cap')} bits")]:
        p = m.get(key)
        if p:
            rows.append((f"price of a place: one process, {what}",
                         f"{fmt(p['places_per_minute'])} places/min ({p['places']} in {fmt(p['seconds'], 1)} s; "
                         f"bits {p.get('min_bits')}..{p.get('max_bits')})", "", "", "(context)", ""))

    # status vs constant handler (and Redis)
    cs, s = m.get("const_status"), m.get("status")
    r = ratio(s and s["rps"], cs and cs["rps"])
    mem = m.get("redis_memory", {})
    rows.append((f"queue status poll ({fmt(mem.get('joins'))} waiting; rounds in turns with the constant handler)",
                 f"{fmt(s and s['rps'])} req/s{rounds_of(s)} (p99 {fmt(s and s['p99_ms'], 1)} ms)",
                 f"constant handler {fmt(cs and cs['rps'])} req/s{rounds_of(cs)}",
                 pct(r), "≥ 80 %", verdict(None if r is None else r >= 0.8)))
    rows.append(cpu_row("status", m))
    rs = m.get("redis_evalsha_status", {}).get("rps")
    r2 = ratio(s and s["rps"], rs)
    rc = m.get("redis_commands_status", {})
    rows.append(("Redis commands per status poll", f"{fmt(rc.get('per_poll'), 3)} "
                 f"({fmt(rc.get('commands'))} commands for {fmt(rc.get('polls'))} polls)", "", "", "≤ 0.2",
                 verdict(None if rc.get("per_poll") is None else rc["per_poll"] <= 0.2)))
    rows.append(("status poll vs Redis", f"{fmt(s and s['rps'])} req/s", f"redis-benchmark EVALSHA status.lua "
                 f"{fmt(rs)}/s (PING {fmt(m.get('redis_ping', {}).get('rps'))}/s)", pct(r2), "(context)", ""))

    # availability while selling
    a = m.get("availability")
    rows.append(("sale availability read while selling", f"p99 {fmt(a and a['p99_ms'], 1)} ms "
                 f"({fmt(a and a['rps'])} req/s, 8 connections)", "", "", "p99 < 50 ms",
                 verdict(None if not a else a["p99_ms"] < 50)))

    # flash: fixed rate, then adaptive
    for key, label in (("flash", "flash sale"), ("flash_adaptive", "flash sale, adaptive admission")):
        fl = m.get(key)
        if not fl:
            rows.append((label, "not run", "", "", "sold out, zero oversell", "n/a"))
            continue
        oversold = None
        units = fl.get("audit", {}).get("units", {})
        if units:
            oversold = max(0, units.get("sold", 0) + units.get("held", 0) - units.get("total", 0))
        t = fl.get("time_to_sell_out_s")
        # Admission-bound floor: the admissions it takes to sell every unit
        # (2.3 units a buyer, 90 % pay) at 400/s, plus one hold TTL (30 s) for
        # the last unpaid holds to come back.
        floor = (fl.get("units") or 0) / (2.3 * 0.9) / 400 + 30
        joined = fl.get("all_joined_s")
        ok = fl.get("sold_out") and fl.get("audit_ok") and oversold == 0 and t is not None and t <= 1.5 * floor
        rate = fl.get("admit_rate_settled")
        rows.append((f"{label} ({fmt(fl.get('visitors'))} visitors, {fmt(fl.get('units'))} units, 30/40/30)",
                     f"sold out in {fmt(t, 1)} s (50/90/99 %: "
                     f"{' / '.join(fmt(x, 1) for x in (fl.get('time_to_50_90_99_s') or [None] * 3))} s); "
                     f"all joined after {fmt(joined, 1)} s; sold {fmt(units.get('sold'))}; oversold {oversold}; "
                     f"audit {'ok' if fl.get('audit_ok') else 'FAILED'}"
                     + (f"; rate settled at {fmt(rate)}/s" if key == "flash_adaptive" else ""),
                     f"floor ≈ {fmt(floor)} s", pct(t / floor if t else None),
                     "≤ 1.5 × floor, zero oversell", verdict(bool(ok))))
        rows.append((f"{label}: all joined", f"{fmt(joined, 1)} s", "", "", "≤ 15 s",
                     verdict(None if joined is None else joined <= 15)))
        # The walk-aways' TTL rounds (loadtest/pg/flash_tail.sql): the last
        # unit waits one hold TTL per unpaid hold of it that expired.
        tail = m.get(f"{key}_tail")
        if tail:
            rounds = ", ".join(f"{k}: {fmt(v)}" for k, v in (tail.get("units_by_expired_holds") or {}).items())
            rows.append((f"{label}: the tail (units by unpaid holds of them that expired)",
                         f"{rounds or 'none'}; the last unit sold after {tail.get('last_unit_expired_holds')} "
                         f"of its holds expired, {fmt(tail.get('last_unit_first_held_to_sold_s'), 1)} s after "
                         f"its first hold (hold TTL {tail.get('hold_ttl_s')} s)", "", "", "(context)", ""))

    # memory
    per = mem.get("per_visitor_info")
    rows.append((f"Redis per waiting visitor ({fmt(mem.get('joins'))} joins)",
                 f"{fmt(per, 1)} B (INFO used_memory delta); {fmt(mem.get('per_visitor_keys'), 1)} B "
                 f"(MEMORY USAGE of the sale's keys)", "", "", "≤ 150 B",
                 verdict(None if per is None else per <= 150)))
    rp = m.get("rss_polling", {})
    rows.append((f"server RSS, {fmt(rp.get('visitors'))} waiting visitors polling",
                 f"{fmt((rp.get('kib_max') or 0) / 1024, 1)} MiB (idle {fmt(m.get('rss_idle', {}).get('kib', 0) / 1024, 1)}"
                 f" MiB; peak of the whole run {fmt(m.get('rss_hwm', {}).get('kib', 0) / 1024, 1)} MiB)",
                 "", "", "reported", ""))

    lines = [
        f"machine: {machine.get('nproc')} cores ({machine.get('cpu')}), {machine.get('mem_gib')} GiB; "
        f"load average at start {machine.get('load_start')}, at end {m.get('load_end', {}).get('load')}; "
        f"postgres {machine.get('postgres')}, redis {machine.get('redis')}; commit {machine.get('commit')}; "
        f"{'quick' if machine.get('quick') == '1' else 'full'} run, {machine.get('duration')} s per measurement, "
        f"{machine.get('concurrency')} connections",
        "",
        "| path | floodgate | ceiling | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    # (context) the same hold figure against pgbench of floodgate's own claim
    # statement (variant `any`: LIMIT $n, `id = ANY(ARRAY(...))`).
    pa = m.get("pgbench_claim_any", {})
    pa_tps = pa.get("tps_last_window", pa.get("tps"))
    r = ratio(ha_rate, pa_tps)
    rows.append(("(context) hold, after ANALYZE, vs pgbench of floodgate's claim statement (`any`)",
                 f"{fmt(ha_rate)} holds/s",
                 f"pgbench {fmt(pa_tps)}/s{' (last window, mean ' + fmt(pa.get('tps')) + '/s)' if 'tps_last_window' in pa else ''}"
                 f" (p99 {fmt(pa.get('p99_ms'), 2)} ms)", pct(r), "", ""))
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    if ceil:
        pg_text = "pgbench claim ceiling {} claims/s in the last {} s window of variant {} (mean {}/s, p50 {} ms, " \
            "p99 {} ms, {} units left)".format(
                fmt(ceil_tps), fmt(ceil.get("window_s")), ceil.get("variant"), fmt(ceil.get("tps_mean")),
                fmt(ceil.get("p50_ms"), 2), fmt(ceil.get("p99_ms"), 2), fmt(ceil.get("units_left")))
    else:
        pg_text = "pgbench claim {} tps (p50 {} ms, p99 {} ms, {} units left)".format(
            fmt(pg.get("tps")), fmt(pg.get("p50_ms"), 2), fmt(pg.get("p99_ms"), 2), fmt(pg.get("units_left")))
    ceilings = [
        "",
        "ceilings: {}; redis PING {}/s, GET {}/s, "
        "EVALSHA status.lua {}/s; constant handler POST {}/s (p99 {} ms), GET+Bearer {}/s (p99 {} ms)".format(
            pg_text, fmt(m.get("redis_ping", {}).get("rps")), fmt(m.get("redis_get", {}).get("rps")), fmt(rs),
            fmt(cj and cj["rps"]), fmt(cj and cj["p99_ms"], 2), fmt(cs and cs["rps"]), fmt(cs and cs["p99_ms"], 2)),
    ]
    variants = [(k, v) for k, v in m.items() if k.startswith("pgbench_claim") and "variant" in v]
    if variants:
        ceilings.append("pgbench claim variants, claims/s mean / first window / last window (p99 ms; check): " + "; ".join(
            f"{v['variant']} {fmt(v.get('tps_mean'))} / {fmt(v.get('tps_first_window'))} / "
            f"{fmt(v.get('tps_last_window'))} ({fmt(v.get('p99_ms'), 1)}; {'ok' if v.get('verified') else 'FAILED'})"
            for _, v in variants))
    if hold:
        ceilings.append(f"hold answers by status: {hold['statuses']}")
    if ha:
        ceilings.append(f"hold (after ANALYZE) answers by status: {ha['statuses']}")
    if fl:
        for e in fl.get("endpoints", []):
            ceilings.append(f"flash {e['name']}: {fmt(e['count'])} requests, p50 {fmt(e['p50_ms'], 1)} ms, "
                            f"p95 {fmt(e['p95_ms'], 1)} ms, p99 {fmt(e['p99_ms'], 1)} ms, statuses {e['statuses']}")
    text = "\n".join(lines + ceilings) + "\n"
    print(text)
    with open(md_path, "w") as f:
        f.write(text)
    with open(json_path, "w") as f:
        json.dump(m, f, indent=2)


if __name__ == "__main__":
    main()
