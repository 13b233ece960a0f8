"""Run one function over many items in worker processes, with a progress bar.

The data tools (``tools/prepare_data.py``, ``tools/check_data.py``) do the same thing many
times: decode, crop or copy one image. :func:`map_parallel` runs such a function over a list in
``workers`` processes (``workers <= 1``: in this process, which keeps tracebacks and tests
simple), shows a tqdm bar on stderr and returns the results in the order of the items. The
function and its items must be picklable (module-level functions, plain data).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, List, Optional, Sequence, TypeVar

__all__ = ['map_parallel', 'default_workers']

Item = TypeVar('Item')
Result = TypeVar('Result')


def default_workers() -> int:
    """The CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def map_parallel(fn: Callable[[Item], Result], items: Sequence[Item], workers: int = 1,
                 desc: str = '', unit: str = 'file', progress: Optional[bool] = None,
                 chunksize: int = 0) -> List[Result]:
    """``[fn(item) for item in items]``, computed by ``workers`` processes.

    Args:
        fn: A picklable function of one item.
        items: The items.
        workers: Worker processes; ``<= 1`` runs in this process.
        desc: Label of the progress bar.
        unit: Unit shown by the progress bar.
        progress: Show the bar (default: when stderr is a terminal or ``desc`` is given).
        chunksize: Items sent to a worker at a time (0: about 4 chunks per worker).

    Returns:
        The results, in the order of ``items``.
    """
    from tqdm import tqdm

    items = list(items)
    show = bool(desc) if progress is None else progress
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not show, dynamic_ncols=True)
    try:
        if workers <= 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                bar.update(1)
            return results
        chunk = chunksize or max(1, len(items) // (4 * workers))
        with ProcessPoolExecutor(max_workers=min(workers, len(items))) as pool:
            results = []
            for result in pool.map(fn, items, chunksize=chunk):
                results.append(result)
                bar.update(1)
            return results
    finally:
        bar.close()
