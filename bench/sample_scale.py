"""Sample tenant at scale: generate about N events, print events/s and peak memory.

    python -m bench.sample_scale                    # 10 million events (gzip, into a temp folder)
    python -m bench.sample_scale --events 1000000 --keep /data/big-tenant

Baseline, measured in the same run: the default 40-user, 45-day tenant. The big tenant uses
``--scale`` (users and days both grow; sign-ins stay 30 days); the scale is chosen from the
baseline's record counts. Each generation runs in its own process so its peak RSS is its own
(``os.wait4``). Memory is bounded by one day of the tenant: peak RSS follows the number of users
(a day's events), not the number of events written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_USERS, BASE_DAYS = 40, 45


def _generate(out: Path, scale: float, gzip: bool) -> tuple[dict[str, int], float, float]:
    """(record counts, seconds, peak RSS MiB) of one ``sample make`` in a child process."""
    cmd = [sys.executable, "-m", "ir_toolkit", "sample", "make", str(out), "--users", str(BASE_USERS),
           "--days", str(BASE_DAYS), "--scale", f"{scale:.4f}", "--no-progress", "--json"]
    if gzip:
        cmd.append("--gzip")
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"sample make failed ({proc.returncode})")
        stdout.seek(0)
        records = json.loads(stdout.read())["tenant"]["records"]
    return records, seconds, usage.ru_maxrss / 1024


def _scale_for(target: int, base: dict[str, int]) -> float:
    """The scale giving about ``target`` events: sign-ins cover 30 days whatever the scale, the rest grows with days.

    events(s) = users(s) * (days(s) * per_user_day + 30 * signins_per_user_day), users and days both times s.
    """
    signins = sum(v for k, v in base.items() if k.startswith("signins_"))
    per_day = (base["events_total"] - signins) / (BASE_USERS * BASE_DAYS)
    signin_per_day = signins / (BASE_USERS * 30)
    a, b = BASE_USERS * BASE_DAYS * per_day, BASE_USERS * 30 * signin_per_day      # a s^2 + b s = target
    target = int(target * 1.05)        # the model overestimates by about 4% (measured at 7.6 million)
    return max(1.0, (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sample_scale", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="about how many events (default 10 million)")
    ap.add_argument("--keep", metavar="DIR", help="write the big tenant here and keep it")
    ap.add_argument("--plain", action="store_true", help="do not gzip (needs ~4 KB of disk per event)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sample-bench-"))
    try:
        base, b_sec, b_rss = _generate(work / "baseline", 1.0, not args.plain)
        scale = _scale_for(args.events, base)
        big = Path(args.keep) if args.keep else work / "big"
        records, sec, rss = _generate(big, scale, not args.plain)
        b_events, events = base["events_total"], records["events_total"]
        size = sum(p.stat().st_size for p in big.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"baseline: {b_events:>12,} events in {b_sec:7.1f} s = {b_events / b_sec:9,.0f} events/s, "
          f"peak RSS {b_rss:7.0f} MiB")
    print(f"scale {scale:5.2f}: {events:>12,} events in {sec:7.1f} s = {events / sec:9,.0f} events/s, "
          f"peak RSS {rss:7.0f} MiB, {size / 2**20:,.0f} MiB on disk")
    speed = (events / sec) / (b_events / b_sec)
    print(f"ratios vs baseline: events x{events / b_events:.1f}, throughput x{speed:.2f}, "
          f"peak RSS x{rss / b_rss:.2f} (one day in memory: RSS follows users per day, not events)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
