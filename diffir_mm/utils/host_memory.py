"""Keep freed host memory in the process heap, so large CPU tensors reuse faulted-in pages.

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
unmaps it on free. A DIRformer at 256² allocates maps of 25-130 MB for every operator, so each
first write page-faults its whole output: on the 2-core project machine that costs as much as
the memory-bound operator itself (a 65536x384 GEMM output: 59 ms fresh, 30 ms into a reused
buffer; a 384-channel depth-wise convolution at 256²: 51 ms vs 21 ms; see bench/README.md).
:func:`keep_freed_memory` turns ``mmap`` allocations off (``M_MMAP_MAX = 0``) and raises the
trim threshold, so freed blocks stay mapped and later tensors reuse them.

This is process-wide, affects every library in the process alike, and keeps the resident set at
its peak instead of returning memory to the system. The restoration CLI, ``tools/test.py`` and
``tools/train.py`` call it unless ``DIFFIR_KEEP_FREED_MEMORY=0``; elsewhere (no glibc) it does
nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Optional

__all__ = ['ENV_SWITCH', 'keep_freed_memory', 'keep_freed_memory_unless_disabled',
           'peak_resident_bytes', 'resident_bytes']

#: Environment variable that, set to ``0``, keeps glibc's defaults.
ENV_SWITCH = 'DIFFIR_KEEP_FREED_MEMORY'

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Freed memory above this stays mapped; 1 GiB short of ``int`` overflow keeps it effectively off.
_TRIM_THRESHOLD = 2 ** 31 - 2 ** 30


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (no ``mmap`` allocations, no heap trimming).

    Returns:
        Whether the settings were applied (``False`` without glibc's ``mallopt``).
    """
    name = ctypes.util.find_library('c')
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def keep_freed_memory_unless_disabled() -> bool:
    """:func:`keep_freed_memory` unless the environment sets ``DIFFIR_KEEP_FREED_MEMORY=0``."""
    if os.environ.get(ENV_SWITCH, '1').strip() == '0':
        return False
    return keep_freed_memory()


def _status_bytes(field: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None elsewhere."""
    try:
        with open('/proc/self/status', encoding='ascii') as fh:
            for line in fh:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def resident_bytes() -> Optional[int]:
    """The resident set of this process now (``VmRSS``; None where ``/proc`` has none)."""
    return _status_bytes('VmRSS')


def peak_resident_bytes() -> int:
    """The peak resident set of this process since it started its program (``exec``).

    On Linux this is ``VmHWM`` of ``/proc/self/status``. ``ru_maxrss`` is not: the kernel carries
    the resident set of the parent at ``fork`` over into the child's ``ru_maxrss`` (also as seen
    by the parent's ``wait4``), so a small process started by a large one (a test runner, a
    training script) reports the large one's size. Elsewhere ``ru_maxrss`` is the best there is.

    Returns:
        Bytes.
    """
    peak = _status_bytes('VmHWM')
    if peak is not None:
        return peak
    import resource
    import sys
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == 'darwin' else peak * 1024)
