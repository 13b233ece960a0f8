"""Fixtures of the spandrel tests."""
import torch

# As tests/test_inference: OpenMP spin-waits make oversubscribed CPUs (other jobs on the same
# cores) tens of times slower; one thread keeps the full-size networks here to seconds.
torch.set_num_threads(1)
