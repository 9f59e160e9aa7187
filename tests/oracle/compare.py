"""Differences between a recorded corpus and a fresh capture, one readable line each."""
from __future__ import annotations

import difflib


def differences(old: dict[str, list[dict]], new: dict[str, list[dict]]) -> list[str]:
    out = []
    for prog in sorted(set(old) | set(new)):
        a, b = old.get(prog), new.get(prog)
        if a is None or b is None:
            out.append(f"{prog}: {'new program' if a is None else 'program gone'}")
            continue
        if len(a) != len(b):
            out.append(f"{prog}: {len(a)} kernels recorded, {len(b)} now "
                       f"(recorded {[k['name'] for k in a]}, now {[k['name'] for k in b]})")
            continue
        for i, (ka, kb) in enumerate(zip(a, b)):
            for field in ("kind", "reasons", "source"):
                if ka[field] != kb[field]:
                    detail = ""
                    if field == "source":
                        diff = difflib.unified_diff(ka["source"].splitlines(), kb["source"].splitlines(), lineterm="", n=1)
                        detail = "\n    " + "\n    ".join(list(diff)[2:14])
                    else:
                        detail = f": {ka[field]!r} -> {kb[field]!r}"
                    out.append(f"{prog} kernel {i} ({ka['name']}): {field} differs{detail}")
    return out
