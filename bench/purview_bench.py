"""Purview CSV benchmark (issue 15): one export of 52,000 records (about 85 MB), start-up included.

Run: ``python -m bench.purview_bench [--records N] [--repeat N] [--keep DIR] [--before DIR]``.

The file is the import bench's Purview audit search CSV (:func:`bench.import_bench.make_inputs`: the
sample tenant's unified audit log records replicated with varied ids, users, times and addresses,
about 1.7 kB a row, as a responder's export of a busy week). Each route is a fresh Python process,
timed whole, start-up and imports included, as a responder meets it (ir_toolkit's bytecode compiled
beforehand, as an installed package has it: :func:`bench.import_bench.compiled`):

* ours:      ``python -m ir_toolkit import CASE audit.csv --json`` (the case made beforehand, untimed)
* baseline:  ``pd.read_csv`` + ``json.loads`` of each AuditData + ``pd.json_normalize`` + ``to_parquet``

The routes take turns ``--repeat`` times (default 5) and the medians of wall and CPU time are compared;
``--before DIR`` adds ours from another checkout's ir_toolkit (before and after a change, in one run).
Nothing is asserted: the figures and the ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.import_bench import ROOT, child_env, compiled, make_inputs, measure

OURS = """
import sys
from ir_toolkit.cli import main
sys.exit(main(["import", sys.argv[1], sys.argv[2], "--json"]))
"""

BASELINE = """
import json, sys
import pandas as pd
out, csv_path = sys.argv[1], sys.argv[2]
rows = pd.read_csv(csv_path, encoding="utf-8-sig")
audit = pd.json_normalize([json.loads(a) for a in rows["AuditData"]])
audit = audit.astype({c: str for c in audit.columns if audit[c].dtype == object})
audit.to_parquet(out + "/audit.parquet")
print(len(audit), 0)
"""


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.purview_bench")
    p.add_argument("--records", type=int, default=52_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--keep", metavar="DIR", help="write the input and outputs here (default: a temp folder)")
    p.add_argument("--before", metavar="DIR", help="also time ours from the ir_toolkit of this checkout (e.g. "
                   "a `git archive` of the commit before a change), taking turns with the others")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="purview-bench-") as tmp:
        folder = Path(args.keep or tmp).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = make_inputs(folder, 2 * args.records, signins_too=False)
        json_path.unlink()
        print(f"input: {args.records:,} Purview CSV rows, {csv_path.stat().st_size / 1e6:.1f} MB; load average "
              f"{os.getloadavg()[0]:.1f} (1 min) before the runs", flush=True)
        compiled(folder / "code")
        before = compiled(folder / "before", Path(args.before).resolve()) if args.before else None
        runs: dict[str, list[tuple[float, float, int, str]]] = {"baseline": [], "ours": []}
        if before:
            runs["before"] = []
        for k in range(args.repeat):
            for label, rs in runs.items():
                out = folder / f"out-{label}-{k}"
                shutil.rmtree(out, ignore_errors=True)
                if label == "baseline":
                    out.mkdir()
                    rs.append(measure(BASELINE, [str(out), str(csv_path)]))
                else:
                    lib = before if label == "before" else None
                    subprocess.run([sys.executable, "-m", "ir_toolkit", "case", "init", str(out), "--tenant",
                                    "bench.example"], check=True, env=child_env(lib), cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
                    rs.append(measure(OURS, [str(out), str(csv_path)], lib))
                shutil.rmtree(out, ignore_errors=True)
                print(f"  run {k + 1}: {label:<9} {rs[-1][0]:6.1f} s wall {rs[-1][1]:6.1f} s CPU", flush=True)
        medians = {}
        for label, rs in runs.items():
            medians[label] = (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
            print(f"{label:<9} {medians[label][0]:6.1f} s wall {medians[label][1]:6.1f} s CPU  peak "
                  f"{max(r[2] for r in rs) / 1e9:4.2f} GB (median of {len(rs)}; wall each: "
                  f"{', '.join(f'{r[0]:.1f}' for r in rs)})", flush=True)
        (bw, bc), (ow, oc) = medians["baseline"], medians["ours"]
        if before:
            print(f"before: {bw / medians['before'][0]:.2f}x faster than the baseline in wall time, "
                  f"{bc / medians['before'][1]:.2f}x in CPU", flush=True)
        print(f"ours: {bw / ow:.2f}x faster than the baseline in wall time, {bc / oc:.2f}x in CPU (goal >= 1.5x, "
              f"start-up included); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) at the "
              f"end, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
