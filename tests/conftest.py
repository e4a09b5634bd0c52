"""Suite-wide settings: everything runs offline and reproducibly; on the GPU where there is one."""
import importlib.util
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


# The import names of the libraries that pyproject.toml's extras install (never the core's numpy,
# h5py, pydantic). The core-only pass (.ci/test_core_minimum.sh) runs the whole suite without them.
EXTRA_MODULES = frozenset({"torch", "torch_geometric", "networkx", "transformers", "tokenizers", "safetensors",
                           "pydicom", "PIL", "tqdm", "scipy", "sklearn", "sacrebleu", "matplotlib", "fsspec"})


def _absent_extra(exc: BaseException) -> str | None:
    """The extra's module that ``exc`` says is missing, when it is truly not installed here."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top not in EXTRA_MODULES:
        return None  # a core module, or one no extra declares: a real failure
    try:
        installed = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        installed = False
    return None if installed else top


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that stops on an extra which is not installed is reported as skipped, naming it.

    Only where the library is really absent (a core-only install): with the extras installed the
    same error is a failure. ``NF-E-EXTRA`` (:class:`~neural_format.errors.MissingExtraError`) is a
    ``ModuleNotFoundError`` too.
    """
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    missing = _absent_extra(call.excinfo.value)
    if missing:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: needs {missing} (an extra of pyproject.toml), not installed")


@pytest.fixture
def device():
    """The device the models run on in a test: the GPU where there is one, else the CPU.

    Tests take it instead of assuming the CPU, so the suite checks the CUDA path on a GPU machine.
    """
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
