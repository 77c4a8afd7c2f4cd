"""The kernel a playbook's notebooks run on: this very interpreter, one for the whole run.

Every notebook in a kernel of its own started Python and imported pandas, DuckDB and matplotlib again (2-3 s CPU
each). :class:`SharedKernel` starts one and empties its namespace between notebooks, so each notebook runs as it
does alone in JupyterLab (its parameters cell injected by papermill as before).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ir_toolkit

KERNEL_NAME = "ir-toolkit-python"


def kernel_manager_class(spec_dir: Path, log_path: Path) -> type:
    """A kernel manager class whose kernel is this interpreter, importing this ir_toolkit.

    The kernelspec is written to ``spec_dir`` (a temporary folder) rather than installed, so
    whatever ``python`` is first on PATH (or registered as ``python3``) never matters: the
    notebooks run on the interpreter (and the virtual environment) that runs the playbook.
    :class:`SharedKernel` owns the manager and shuts the kernel down after the last notebook.
    The kernel's own stdout/stderr (not the cells' output) go to ``log_path``, keeping the
    CLI's stderr to one line per error.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    root = str(Path(ir_toolkit.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    kdir = spec_dir / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--log-level=ERROR"],
        "display_name": "ir_toolkit (Python)", "language": "python",
        "env": {"PYTHONPATH": path},
    }))

    class _ThisInterpreter(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _spec_manager(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(spec_dir)])

        def client(self, **kw: Any) -> Any:
            made = super().client(**kw)
            self.__dict__.setdefault("clients_made", []).append(made)  # closed by SharedKernel.release
            return made

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(log_path, "ab") as log_file:  # the kernel keeps its own copy of the descriptor
                kw["stdout"] = kw["stderr"] = log_file
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return _ThisInterpreter


#: Run in the shared kernel between two notebooks: the next one starts from an empty namespace, numbered from 1,
#: with no preparation of the last one held (its DuckDB tables), as if in a kernel of its own.
RESET_CODE = ("import sys\n"
              "_prep = sys.modules.get('ir_toolkit.analysis.prepare')\n"
              "if _prep is not None: _prep.forget_prepared()\n"
              "get_ipython().run_line_magic('reset', '-f')\n"
              "get_ipython().execution_count = 1\n"
              "import gc; gc.collect()\n")


class SharedKernel:
    """One kernel for every notebook of a playbook run (each notebook in a kernel of its own started Python and
    imported pandas, DuckDB and matplotlib again: 2-3 s CPU each). Between two notebooks :data:`RESET_CODE` empties
    the namespace, so each runs as it does alone in JupyterLab; :meth:`close` shuts the kernel down.
    """

    def __init__(self, spec_dir: Path, log_path: Path) -> None:
        self.manager = kernel_manager_class(spec_dir, log_path)(kernel_name=KERNEL_NAME)
        self.used = False

    def reset(self) -> None:
        """Empty the kernel's namespace after a notebook (nothing when no kernel was started)."""
        from jupyter_core.utils import run_sync

        if not self.manager.has_kernel:
            return
        client = self.manager.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=60)
            reply = run_sync(client.execute_interactive)(RESET_CODE, silent=True, store_history=False, timeout=60,
                                                         output_hook=lambda msg: None)
            if reply["content"].get("status") != "ok":
                raise RuntimeError(f"the kernel could not be reset: {reply['content'].get('evalue')}")
        finally:
            self.release()

    def release(self) -> None:
        """Close the channels of every client made of the kernel (papermill's, which does not own the kernel, stay
        open otherwise)."""
        made = self.manager.__dict__.get("clients_made", [])
        while made:
            made.pop().stop_channels()

    def close(self) -> None:
        """Shut the kernel down (nothing when none was started)."""
        from jupyter_core.utils import run_sync

        self.release()
        try:
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=True)
        except RuntimeError as exc:  # a kernel that died (nbclient recovers the same way)
            if "No kernel is running" not in str(exc):
                raise
            run_sync(self.manager.cleanup_resources)()
