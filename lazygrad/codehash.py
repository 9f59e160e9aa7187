"""The hash that names a kernel's code: its source without comments (user source lines in
the comments do not change the binary, so the same code from another line of Python reuses the
compiled program and the same kernel name). Codegen names kernels with it and the runtime keys
its program cache on it, so it sits below both.

Public names: code_hash.
"""
from __future__ import annotations

import hashlib
import re

_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def code_hash(source: str) -> str:
    """Hash of a kernel's code without its comments."""
    return hashlib.sha256(_COMMENTS.sub("", source).encode()).hexdigest()
