"""Harness-side handle on a contender that runs in a worker subprocess.

The worker is started on first use with the contender's environment and kept for the whole
run, so its compile caches and allocator pools stay warm between cases, exactly like an
in-process contender. Timing happens inside the worker; only the number crosses the pipe,
so the IPC round trip is not measured. If the worker dies or hangs, the current case is
recorded as 'n/a' and the next case starts a fresh worker.

Public names: RemoteContender, RemotePrepared, WorkerError.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.contenders.base import Contender, Unsupported

REPO_ROOT = Path(__file__).resolve().parents[2]
PREPARE_TIMEOUT_S = 900.0
COMMAND_TIMEOUT_S = 600.0


class WorkerError(RuntimeError):
    """The worker failed, died or timed out."""


def _pump(stream: IO[str], lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class RemoteContender:
    """A Contender proxied through `python -m bench.worker NAME`."""

    def __init__(self, contender: Contender, log_path: Path | None = None) -> None:
        self.contender = contender
        self.name = contender.name
        self.log_path = log_path
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: IO[str] | None = None
        self.version: str | None = None

    # -- process management ------------------------------------------------------------

    def _start(self) -> None:
        env = dict(os.environ)
        env.update(self.contender.env)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"]
                                             if env.get("PYTHONPATH") else "")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", self.name], cwd=str(REPO_ROOT), env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL, text=True)
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        self.version = self._call({"cmd": "hello"}, COMMAND_TIMEOUT_S)["version"]

    def _call(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(msg) + "\n")
            self._proc.stdin.flush()
            line = self._lines.get(timeout=timeout)
        except (BrokenPipeError, queue.Empty) as e:
            self.stop()
            raise WorkerError(f"{self.name} worker {'timed out' if isinstance(e, queue.Empty) else 'died'}"
                              f" during {msg['cmd']}") from None
        if line is None:
            code = self._proc.wait()
            self.stop()
            raise WorkerError(f"{self.name} worker exited with code {code} during {msg['cmd']}")
        reply = json.loads(line)
        if not reply.get("ok"):
            if reply.get("unsupported"):
                raise Unsupported(reply.get("error", ""))
            raise WorkerError(reply.get("error", "worker error"))
        return reply

    def stop(self) -> None:
        """Ask the worker to quit; kill it if it does not."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    proc.stdin.flush()
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- the Contender-like interface --------------------------------------------------

    def supports(self, kind: str, quick: bool) -> bool:
        return self.contender.supports(kind, quick)

    def prepare(self, kind: str, params: dict[str, Any], warmup: int, seed: int = 0,
                arrays: Any = None, count_kernels: bool = True) -> "RemotePrepared":
        reply = self._call({"cmd": "prepare", "kind": kind, "params": params, "warmup": warmup,
                            "seed": seed, "count_kernels": count_kernels}, PREPARE_TIMEOUT_S)
        return RemotePrepared(self, reply.get("kernels"))


class RemotePrepared:
    """A case prepared inside the worker."""

    def __init__(self, owner: RemoteContender, kernels: int | None) -> None:
        self.owner = owner
        self._kernels = kernels

    def time_once(self, reps: int) -> float:
        return float(self.owner._call({"cmd": "time", "reps": reps}, COMMAND_TIMEOUT_S)["t"])

    def output(self) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
            path = os.path.join(tmp, "out.npy")
            self.owner._call({"cmd": "output", "path": path}, COMMAND_TIMEOUT_S)
            return np.load(path)

    def kernels(self) -> int | None:
        return self._kernels

    def close(self) -> None:
        try:
            self.owner._call({"cmd": "close"}, COMMAND_TIMEOUT_S)
        except Exception:
            pass
