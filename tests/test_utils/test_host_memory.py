"""``keep_freed_memory``: freed large blocks are reused without page faults (issue 14).

Each case runs in a child process: the setting is process-wide and must not leak into the
test session.
"""
import json
import sys

import pytest

from helpers import run_python, subprocess_env

CHILD = r'''
import json, resource, sys
import torch
from diffir_mm.utils.host_memory import keep_freed_memory, keep_freed_memory_unless_disabled

mode = sys.argv[1]
applied = {'keep': keep_freed_memory, 'env': keep_freed_memory_unless_disabled,
           'default': lambda: False}[mode]()

def faults_of_a_fresh_map():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(64 * 2 ** 20 // 4).fill_(1.0)  # 64 MB, written once, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

# The first maps fault their pages in while glibc grows the heap: a freed block is reused once
# the heap holds a free block of the aligned size, which took 1 to 6 maps (measured, 2 threads).
for _ in range(8):
    faults_of_a_fresh_map()
faults = sorted(faults_of_a_fresh_map() for _ in range(5))
print(json.dumps({'applied': applied, 'faults': faults[2]}))  # the median
'''

PAGES = 64 * 2 ** 20 // 4096  # pages of one 64 MB map


def _child(mode: str, **env) -> dict:
    proc = run_python(['-c', CHILD, mode], env=subprocess_env(extra=env))
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_freed_memory_is_reused_without_page_faults():
    default = _child('default')
    kept = _child('keep')
    assert not default['applied'] and kept['applied']
    assert default['faults'] > PAGES // 2  # glibc unmapped the freed map: faulted in again
    assert kept['faults'] < PAGES // 20  # the freed block was reused


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_the_environment_switch_keeps_the_defaults():
    assert _child('env')['applied']
    off = _child('env', DIFFIR_KEEP_FREED_MEMORY='0')
    assert not off['applied'] and off['faults'] > PAGES // 2


def test_peak_resident_bytes_is_the_processs_own():
    """A small process started by a large one reports its own peak, not the parent's size
    (``ru_maxrss`` carries the parent's resident set over at fork)."""
    import subprocess

    import numpy as np

    ballast = np.ones(2 * 2 ** 30 // 8)  # 2 GiB resident in this process
    child = ('import resource\n'
             'from diffir_mm.utils.host_memory import peak_resident_bytes\n'
             'print(peak_resident_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)')
    proc = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True,
                          env=subprocess_env(), check=True)
    own, maxrss_kib = (int(v) for v in proc.stdout.split())
    assert maxrss_kib * 1024 >= ballast.nbytes  # what ru_maxrss says: the parent's size
    assert 10 * 2 ** 20 < own < ballast.nbytes / 2  # the interpreter and its imports (~0.5 GiB)


RESIDENT_CHILD = r'''
import mmap
from diffir_mm.utils.host_memory import keep_freed_memory, peak_resident_bytes, resident_bytes

# the condition CI hit (an in-process CLI test had called keep_freed_memory): freed heap pages
# stay resident, so only memory of its own (an anonymous mapping) can show an allocation
keep_freed_memory()
spare = bytearray(128 * 2 ** 20)
spare[::4096] = b"\1" * len(spare[::4096])
del spare
before = resident_bytes()
block = mmap.mmap(-1, 64 * 2 ** 20)
for offset in range(0, len(block), mmap.PAGESIZE):  # touch every page
    block[offset] = 1
now = resident_bytes()
print(now - before, peak_resident_bytes() - now)
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc/self/status')
def test_resident_bytes_follows_an_allocation_and_stays_under_the_peak():
    grown, below_peak = (int(v) for v in run_python(['-c', RESIDENT_CHILD]).stdout.split())
    assert grown >= 48 * 2 ** 20
    assert below_peak >= 0
