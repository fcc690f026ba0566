#!/usr/bin/env python3
"""Figures of bench.sh's pgbench claim ceiling (loadtest/pg/).

  claim_stats.py run OUT NAME VARIANT ORDER SCRIPT DURATION WINDOW UNITS EXIT CHECK_JSON INDEX_JSON
      One claim variant: reads OUT/pgbench-NAME.txt (pgbench's report) and the
      per-transaction log OUT/pgbench-NAME/claim*, checks the table against
      what pgbench reported, prints the metric line {"name": NAME, "data": ...}
      on stdout and a human line on stderr.
      CHECK_JSON: counts read from the table after the run
      ({"held", "held_holds", "available", "total"}); INDEX_JSON: pg_stat of
      the table's indexes ({index: [idx_scan, idx_tup_read]}).

  claim_stats.py ceiling METRICS_JSONL TABLE_MD
      Every variant of the run side by side (written to TABLE_MD too), and the
      metric line of the ceiling: the correct variant with the best
      last-window throughput.
"""

import glob
import json
import math
import re
import sys


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * (len(sorted_values) - 1) + 0.5))]


def run(out, name, variant, order, script, duration, window, units, exit_code, check, index):
    duration, window, units, exit_code = float(duration), float(window), int(units), int(exit_code)
    check, index = json.loads(check), json.loads(index)
    text = open(f"{out}/pgbench-{name}.txt").read()
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    tps = float(m.group(1)) if m else 0.0
    m = re.search(r"number of transactions actually processed: (\d+)", text)
    processed = int(m.group(1)) if m else None
    m = re.search(r"number of failed transactions: (\d+)", text)
    failed = int(m.group(1)) if m else 0
    aborted = "aborted" in text

    # Per-transaction log: client_id transaction_no time script_no time_epoch time_us ...
    # time is the latency in microseconds (or "failed"/"skipped"); epoch.us is
    # when the transaction ended.
    txs, bad = [], 0
    for f in glob.glob(f"{out}/pgbench-{name}/claim*"):
        for line in open(f):
            parts = line.split()
            if len(parts) < 6:
                continue
            if not parts[2].isdigit():
                bad += 1
                continue
            lat_us = int(parts[2])
            end = int(parts[4]) + int(parts[5]) / 1e6
            txs.append((end, lat_us))
    lat = sorted(t[1] / 1000 for t in txs)
    windows = []
    last_lat = []
    if txs:
        t0 = min(end - lat_us / 1e6 for end, lat_us in txs)
        n_windows = max(1, int(math.floor(duration / window + 1e-9)))
        counts = [0] * n_windows
        for end, lat_us in txs:
            k = int((end - t0) // window)
            if 0 <= k < n_windows:
                counts[k] += 1
                if k == n_windows - 1:
                    last_lat.append(lat_us / 1000)
        windows = [round(c / window, 1) for c in counts]
    last_lat.sort()

    held = check.get("held")
    verified = (exit_code == 0 and not aborted and failed == 0 and bad == 0 and processed is not None
                and processed == len(txs) == held == check.get("held_holds")
                and held + check.get("available", -1) == check.get("total") == units)
    problems = []
    if exit_code != 0 or aborted:
        problems.append(f"pgbench exit status {exit_code}{' (a client aborted)' if aborted else ''}")
    if failed or bad:
        problems.append(f"{max(failed, bad)} failed transactions")
    if processed != held:
        problems.append(f"{held} units held after {processed} transactions")
    if processed != len(txs):
        problems.append(f"{len(txs)} transactions in the log, {processed} reported")
    if held != check.get("held_holds"):
        problems.append(f"{held} held units but {check.get('held_holds')} distinct holds")
    if check.get("available") == 0:
        problems.append("the scratch table ran out of units (make --units larger or --duration shorter)")

    entries = sum(v[1] for v in index.values())
    d = {
        "variant": variant,
        "order": order,
        "script": script,
        "tps": tps,
        "tps_mean": tps,
        "tps_first_window": windows[0] if windows else None,
        "tps_last_window": windows[-1] if windows else None,
        "window_s": window,
        "windows": windows,
        "transactions": processed,
        "failed": failed,
        "held": held,
        "units_left": check.get("available"),
        "verified": verified,
        "problems": problems,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "p99_last_window_ms": percentile(last_lat, 99),
        "index_scans": {k: v[0] for k, v in index.items()},
        "index_entries_read": {k: v[1] for k, v in index.items()},
        "index_entries_per_claim": round(entries / processed, 1) if processed else None,
    }
    print(json.dumps({"name": name, "data": d}))
    f = lambda x, n=0: "n/a" if x is None else f"{x:,.{n}f}"
    print(f"{variant:<7} {f(tps)} claims/s mean, {window:g} s windows: first {f(d['tps_first_window'])}, "
          f"last {f(d['tps_last_window'])}; p50 {f(d['p50_ms'], 2)} ms, p99 {f(d['p99_ms'], 2)} ms "
          f"(last window {f(d['p99_last_window_ms'], 2)} ms); {f(d['index_entries_per_claim'], 1)} index entries "
          f"read per claim; {f(check.get('available'))} units left; "
          f"check: {'ok' if verified else 'FAILED: ' + '; '.join(problems)}", file=sys.stderr)
    print(f"        per window: {' '.join(f(w) for w in windows)}", file=sys.stderr)


def ceiling(metrics_path, md_path):
    runs, machine = [], {}
    for line in open(metrics_path):
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["name"] == "machine":
            machine = rec["data"]
        elif rec["name"].startswith("pgbench_claim") and "variant" in rec["data"]:
            runs.append((rec["name"], rec["data"]))
    if not runs:
        print("no pgbench claim variant ran", file=sys.stderr)
        return 1
    f = lambda x, n=0: "n/a" if x is None else f"{x:,.{n}f}"
    good = [r for r in runs if r[1]["verified"] and r[1]["tps_last_window"] is not None]
    best = max(good, key=lambda r: r[1]["tps_last_window"]) if good else None
    in_order = [r for r in good if r[1]["order"] == "id"]
    best_in_order = max(in_order, key=lambda r: r[1]["tps_last_window"]) if in_order else None
    window = runs[0][1]["window_s"]
    lines = [
        f"pgbench claim ceiling: -M prepared, {machine.get('pg_clients', '?')} clients, "
        f"{machine.get('duration', '?')} s per variant, {f(machine.get('pg_units') and int(machine['pg_units']))} "
        f"units on a fresh scratch table each; throughput per {window:g} s window from the transaction log",
        "",
        "| variant | units handed out | mean claims/s | first window | last window | last/first | p50 ms | p99 ms "
        "| p99 last window ms | index entries read per claim | check |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, d in runs:
        ratio = (d["tps_last_window"] / d["tps_first_window"]) if d["tps_first_window"] else None
        mark = " **(ceiling)**" if best and name == best[0] else ""
        lines.append(
            f"| {d['variant']}{mark} | {'in id order' if d['order'] == 'id' else d['order']} | {f(d['tps_mean'])} "
            f"| {f(d['tps_first_window'])} | {f(d['tps_last_window'])} "
            f"| {'n/a' if ratio is None else f'{100 * ratio:.0f} %'} | {f(d['p50_ms'], 2)} | {f(d['p99_ms'], 2)} "
            f"| {f(d['p99_last_window_ms'], 2)} | {f(d['index_entries_per_claim'], 1)} "
            f"| {'ok' if d['verified'] else 'FAILED: ' + '; '.join(d['problems'])} |")
    lines.append("")
    for name, d in runs:
        lines.append(f"{d['variant']:<7} claims/s per window: {' '.join(f(w) for w in d['windows'])}")
    lines.append("")
    if best:
        b = best[1]
        lines.append(f"ceiling = best correct variant by its LAST-window throughput: {b['variant']}, "
                     f"{f(b['tps_last_window'])} claims/s in the last {window:g} s (mean {f(b['tps_mean'])}/s, "
                     f"first window {f(b['tps_first_window'])}/s, p99 {f(b['p99_ms'], 2)} ms); the hold rows "
                     f"are compared with this figure.")
        if b["order"] != "id" and best_in_order:
            o = best_in_order[1]
            lines.append(f"(it does not hand units out in id order; the best variant that does is {o['variant']}: "
                         f"{f(o['tps_last_window'])}/s in the last window, mean {f(o['tps_mean'])}/s)")
    else:
        lines.append("no correct variant: no ceiling")
    bad = [d["variant"] for _, d in runs if not d["verified"]]
    if bad:
        lines.append(f"left out of the ceiling, check FAILED: {', '.join(bad)}")
    text = "\n".join(lines) + "\n"
    print(text, file=sys.stderr)
    with open(md_path, "w") as fh:
        fh.write(text)
    if best:
        b = best[1]
        data = {
            "variant": b["variant"], "metric": best[0], "order": b["order"],
            "tps_last_window": b["tps_last_window"], "tps_mean": b["tps_mean"],
            "tps_first_window": b["tps_first_window"], "window_s": b["window_s"],
            "p50_ms": b["p50_ms"], "p95_ms": b["p95_ms"], "p99_ms": b["p99_ms"],
            "p99_last_window_ms": b["p99_last_window_ms"], "units_left": b["units_left"],
            "chosen_by": "tps_last_window of the correct variants",
            "variants": {d["variant"]: {"tps_last_window": d["tps_last_window"], "tps_mean": d["tps_mean"],
                                        "tps_first_window": d["tps_first_window"], "p99_ms": d["p99_ms"],
                                        "verified": d["verified"], "order": d["order"]} for _, d in runs},
        }
        if best_in_order:
            data["best_in_id_order"] = {"variant": best_in_order[1]["variant"],
                                        "tps_last_window": best_in_order[1]["tps_last_window"],
                                        "tps_mean": best_in_order[1]["tps_mean"]}
        print(json.dumps({"name": "pgbench_ceiling", "data": data}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 13 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "ceiling":
        sys.exit(ceiling(*sys.argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
