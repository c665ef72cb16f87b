"""Handing freed memory back to the operating system between the phases of a run."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_free_memory() -> None:
    """Return the C heap's free pages to the operating system (glibc's ``malloc_trim``).

    glibc keeps memory freed by large temporary numpy arrays for reuse, so a phase that
    has finished (the no-contact twin, the event loop) would otherwise still count in
    the next phase's resident memory. Dask's workers trim the same way. A no-op where
    the C library has no ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
