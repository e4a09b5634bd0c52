"""Suite-wide settings: everything runs offline, on CPU, reproducibly."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

# the atheris harness is run by hand (see tests/fuzz/README.md), never by pytest
collect_ignore_glob = ["fuzz/*"]
