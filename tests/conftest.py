"""Suite-wide settings: everything runs offline and reproducibly; on the GPU where there is one."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

# the atheris harness is run by hand (see tests/fuzz/README.md), never by pytest
collect_ignore_glob = ["fuzz/*"]



def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run where CUDA is present and are skipped (with the reason) elsewhere."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (run by benchmarks/gpu_check.sh)")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def device():
    """The device the models run on in a test: the GPU where there is one, else the CPU.

    Tests take it instead of assuming the CPU, so the suite checks the CUDA path on a GPU machine.
    """
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
