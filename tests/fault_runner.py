"""Run ``ir-toolkit ARGS`` and kill it (SIGKILL) at the Nth write into the case: a fault-suite helper.

Usage: ``python fault_runner.py N CASE ARGS...``. N counts every open for writing, rename,
replace and removal of a path inside CASE (an audit hook sees them all, our code and the
libraries'); N = 0 never kills and prints ``WRITES <count>`` on stderr at the end. With
``FAULT_FSIZE=<bytes>`` every file the process writes is limited to that size (a full disk).
"""

from __future__ import annotations

import os
import resource
import signal
import sys

KILL_AT = int(sys.argv[1])
CASE = os.path.realpath(sys.argv[2])
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
EVENTS = {"os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir", "os.truncate", "shutil.rmtree"}
count = 0


def _inside(path: object) -> bool:
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    if not isinstance(path, str):
        return False
    return os.path.realpath(path).startswith(CASE + os.sep) or os.path.realpath(path) == CASE


def _hook(event: str, args: tuple[object, ...]) -> None:
    global count
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and bool(flags & WRITING))
    elif event in EVENTS:
        path, writing = args[0], True
    else:
        return
    if writing and _inside(path):
        count += 1
        if count == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get("FAULT_FSIZE"):
    size = int(os.environ["FAULT_FSIZE"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
sys.addaudithook(_hook)

from ir_toolkit.cli import main  # noqa: E402 - after the hook, so every write is seen

code = main(sys.argv[3:])
sys.stderr.write(f"WRITES {count}\n")
sys.exit(code)
