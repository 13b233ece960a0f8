"""pytest configuration of the torch-only network tests."""
from __future__ import annotations

from typing import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def _single_thread() -> Iterator[None]:
    """Run the (tiny) networks single-threaded.

    With 2 OpenMP threads on a busy 2-core machine, small convolutions slow down ~50x from
    spin-waiting; one thread keeps the suite fast and deterministic.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
