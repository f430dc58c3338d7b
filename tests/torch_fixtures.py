"""Fixtures shared by the tests of the neural transforms (imported by those modules only, so that the
rest of the suite does not import torch)."""

import faiss
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-for-bit comparisons need a fixed thread count; the test machine is shared anyway."""
    saved = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(saved[0])
    faiss.omp_set_num_threads(saved[1])
