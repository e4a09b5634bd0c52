"""The build split by job (issue 15 item 7): the flags read BuildConfig's defaults, one function
opens the writer with every storage setting (also for an empty build and for volumes), the
sharded build takes the single build's options -> job path, and the old names still import."""
import argparse

import h5py
import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

import neural_format as nf  # noqa: E402
from neural_builders import build, build_cli, build_config, build_inputs, distributed_build, labels_csv, provenance  # noqa: E402
from neural_builders.build_cli import BuildJob, add_arguments, config_from_args  # noqa: E402
from neural_builders.build_config import BuildConfig, open_writer  # noqa: E402
from neural_builders.phantom import make_case  # noqa: E402
from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.tokenizer import train_report_tokenizer  # noqa: E402
from neural_format.format.metadata import PruningPolicy, SliceAnchorFilter, TopKPercent  # noqa: E402
from neural_format.collections.synthetic import synthetic_meta, synthetic_records  # noqa: E402

BASE = ["--images", "i", "--reports", "r.csv", "--model", "m", "--out", "o.h5"]


def _parser():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


def test_the_flags_defaults_are_build_configs():
    assert config_from_args(_parser().parse_args(BASE)) == BuildConfig()
    changed = config_from_args(_parser().parse_args(BASE + ["--compression", "gzip", "--nucleus", "0.9", "--float16"]))
    assert changed != BuildConfig()
    assert (changed.compression, changed.policy.rule.kind, changed.feature_dtype) == ("gzip", "nucleus", "float16")


def _compression(path):
    with h5py.File(path, "r") as f:
        return f["/patches/features"].compression, f["/patches/features"].compression_opts


def test_open_writer_carries_every_storage_setting(tmp_path):
    meta = synthetic_meta(feature_dim=8)
    config = BuildConfig(compression="gzip", compression_level=7, chunk_bytes=4096)
    with open_writer(config, tmp_path / "a.h5", meta) as writer:
        writer.extend(synthetic_records(5, meta, patches=(2, 6)))
    assert _compression(tmp_path / "a.h5") == ("gzip", 7)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f["/patches/features"].chunks[0] * 8 * 4 <= 4096
    with pytest.raises(nf.NeuralFormatError):   # overwrite=False is carried too
        open_writer(config, tmp_path / "a.h5", meta)
    open_writer(BuildConfig(overwrite=True, compression="lzf"), tmp_path / "a.h5", meta).close()
    assert _compression(tmp_path / "a.h5")[0] == "lzf"


@pytest.fixture(scope="module")
def tiny_model():
    case = make_case(3, 0, size=(128, 128), positive=True)
    tokenizer = train_report_tokenizer([case.report])
    torch.manual_seed(0)
    model = ReportGenerator(tiny_config(len(tokenizer))).eval()
    model.tokenizer = tokenizer
    return model, case


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_build_with_nothing_usable_keeps_the_compression(tiny_model, tmp_path, pipelined):
    # the empty file was opened apart from the others and dropped the compression
    model, _ = tiny_model
    out = tmp_path / "empty.h5"
    summary = build.build_collection([], model, BuildConfig(compression="gzip", progress=False, device="cpu",
                                                            pipelined=pipelined), out)
    assert summary.records_written == 0 and nf.validate(out).ok
    assert _compression(out)[0] == "gzip"


def test_a_volume_build_keeps_the_compression(tiny_model, tmp_path):
    from neural_builders.volume import VolumeInput, build_volume_collection
    model, case = tiny_model
    volume = np.stack([case.image, np.rot90(case.image).copy()])
    config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=25)), compression="lzf", progress=False,
                         device="cpu")
    out = tmp_path / "volume.h5"
    build_volume_collection([VolumeInput("vol-0", volume, case.report)], model, config, out,
                            SliceAnchorFilter(threshold=0.99999))
    assert nf.validate(out).ok and _compression(out)[0] == "lzf"


def test_the_sharded_build_takes_the_single_builds_path(monkeypatch):
    seen = {}
    items = [build_inputs.BuildInput(case_id=c) for c in ("c", "a", "b")]

    def job_from_args(args, **overrides):
        seen.update(overrides)
        return BuildJob(build_cli.config_from_args(args, **overrides), items, ["pairing skip"], object())
    monkeypatch.setattr(build_cli, "job_from_args", job_from_args)
    inputs, ids, _ = distributed_build.builder_inputs(_parser().parse_args(BASE + ["--device", "cpu"]))
    assert seen == {"device": "cpu", "overwrite": True, "progress": False}
    assert ids == ["a", "b", "c"] and [i.case_id for i in inputs] == ids
    assert distributed_build.config_from_args(_parser().parse_args(BASE + ["--device", "cpu"])) == \
        BuildConfig(device="cpu", overwrite=True, progress=False)


def test_the_old_names_still_import_from_build():
    moved = {"BuildConfig": build_config, "open_writer": build_config, "BuildInput": build_inputs,
             "inputs_from_pairs": build_inputs, "labels_from_csv": labels_csv, "model_refs": provenance,
             "collection_meta": provenance, "BUILDER_NAME": provenance, "add_arguments": build_cli,
             "config_from_args": build_cli, "job_from_args": build_cli, "BuildJob": build_cli}
    for name, module in moved.items():
        assert getattr(build, name) is getattr(module, name), name
