"""Worker subprocess: runs one contender's cases on behalf of the harness.

Started as ``python -m bench.worker CONTENDER`` with the contender's environment. Reads one
JSON command per line on stdin and answers one JSON line on a private copy of stdout;
everything else written to stdout (library chatter, C printf) is redirected to stderr so it
cannot corrupt the protocol.

Commands: hello | prepare {kind, params, warmup, seed} | time {reps} | output {path}
| close | quit. Every answer has "ok"; failures carry "error" and "unsupported".

Public names: main.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

import numpy as np


def _serve(name: str, proto: Any) -> None:
    from bench.contenders import BY_NAME, Unsupported
    from bench.contenders.base import LocalPrepared

    contender = BY_NAME[name]
    prepared: LocalPrepared | None = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        try:
            if cmd == "quit":
                break
            if cmd == "hello":
                reply: dict[str, Any] = {"version": contender.version(), "pid": os.getpid()}
            elif cmd == "prepare":
                prepared = None
                prepared = contender.prepare(msg["kind"], msg["params"], msg["warmup"], msg["seed"],
                                             count_kernels=msg.get("count_kernels", True))
                reply = {"kernels": prepared.kernels()}
            elif cmd == "time":
                assert prepared is not None, "time before prepare"
                reply = {"t": prepared.time_once(int(msg["reps"]))}
            elif cmd == "output":
                assert prepared is not None, "output before prepare"
                np.save(msg["path"], np.asarray(prepared.output()))
                reply = {}
            elif cmd == "close":
                if prepared is not None:
                    prepared.close()
                prepared = None
                reply = {}
            else:
                raise ValueError(f"unknown command {cmd!r}")
            reply["ok"] = True
        except Exception as e:  # reported to the harness, which records 'n/a'
            traceback.print_exc(file=sys.stderr)
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}",
                     "unsupported": isinstance(e, Unsupported)}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _serve(args[0], proto)


if __name__ == "__main__":
    main()
