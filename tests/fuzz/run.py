#!/usr/bin/env python3
"""Fuzz every harness for a set time and print one table (make fuzz).

Each harness runs alone (the machine is shared) for --seconds, on a
working corpus under --work seeded from corpus/<name> and
regressions/<name>; the committed corpus is only read. libFuzzer's final
statistics give executions and exec/s, its last status line coverage
(cov: edges, ft: features) and the corpus size. A crash leaves its input
in the working directory, named in the table: minimise it, fix the bug,
commit it under regressions/<name>/ (docs/fuzzing.md).
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse(text):
    stats = {}
    for m in re.finditer(r"^stat::(\w+):\s+(\d+)", text, re.M):
        stats[m.group(1)] = int(m.group(2))
    status = None
    for m in re.finditer(r"^#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: "
                         r"(\d+)/(\S+)", text, re.M):
        status = m
    if status:
        stats["cov"] = int(status.group(1))
        stats["ft"] = int(status.group(2))
        stats["corp"] = "%s/%s" % (status.group(3), status.group(4))
    return stats


def run_one(binary, name, seconds, work):
    wdir = os.path.join(work, name)
    corpus = os.path.join(wdir, "corpus")
    os.makedirs(corpus, exist_ok=True)
    seeds = [d for d in (os.path.join(HERE, "corpus", name),
                         os.path.join(HERE, "regressions", name))
             if os.path.isdir(d)]
    cmd = [binary, "-max_total_time=%d" % seconds, "-print_final_stats=1",
           "-timeout=20", "-rss_limit_mb=2048",
           "-artifact_prefix=%s/" % wdir, corpus] + seeds
    t0 = time.monotonic()
    try:
        # A margin past max_total_time for start-up and the last input.
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=seconds + 120)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        rc = "timeout"
    took = time.monotonic() - t0
    with open(os.path.join(wdir, "log.txt"), "w") as f:
        f.write(out)
    st = parse(out)
    result = "ok"
    if rc != 0:
        arts = sorted(f for f in os.listdir(wdir)
                      if re.match(r"(crash|leak|timeout|oom|slow-unit)-",
                                  f))
        result = "FAIL %s" % (os.path.join(wdir, arts[-1]) if arts else
                              "rc=%s, see %s/log.txt" % (rc, wdir))
    return {"name": name, "secs": took, "runs": st.get(
        "number_of_executed_units", 0), "eps": st.get(
        "average_exec_per_sec", 0), "cov": st.get("cov", 0),
        "ft": st.get("ft", 0), "corp": st.get("corp", "-"),
        "result": result}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory of fuzz_*")
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--only", default="", help="names, comma-separated")
    a = ap.parse_args()
    names = sorted(f[len("fuzz_"):] for f in os.listdir(a.bin)
                   if f.startswith("fuzz_") and
                   os.access(os.path.join(a.bin, f), os.X_OK))
    if a.only:
        want = set(a.only.split(","))
        unknown = want - set(names)
        if unknown:
            sys.exit("fuzz: no harness %s" % ", ".join(sorted(unknown)))
        names = [n for n in names if n in want]
    print("fuzz: %d harnesses, %d s each" % (len(names), a.seconds),
          flush=True)
    rows = []
    for n in names:
        r = run_one(os.path.join(a.bin, "fuzz_" + n), n, a.seconds, a.work)
        print("fuzz: %-16s %s" % (n, r["result"]), flush=True)
        rows.append(r)
    fmt = "%-16s %6s %11s %8s %6s %7s %14s  %s"
    print()
    print(fmt % ("harness", "secs", "executions", "exec/s", "cov", "ft",
                 "corpus", "result"))
    for r in rows:
        print(fmt % (r["name"], "%.0f" % r["secs"], r["runs"], r["eps"],
                     r["cov"], r["ft"], r["corp"], r["result"]))
    sys.exit(1 if any(r["result"] != "ok" for r in rows) else 0)


if __name__ == "__main__":
    main()
