"""Configuration is typed, with each default in one place (issue 15 item 8).

The layout's presence and trailing-shape codes are enums with one rule table each; the report
generator's configuration is a dataclass that also takes its old nested-dict form; the MPNN's
training (``TrainConfig``) and the generator's fine-tuning (``FinetuneConfig``) are two names for
two concepts, and the command-line flags take their defaults from them.
"""
import argparse
import dataclasses
import subprocess
import sys

import pytest

from neural_format import layout
from neural_format.synthetic import synthetic_meta
from neural_builders.vlm.generator_config import FinetuneConfig, GeneratorConfig, ProjectionConfig, ResolutionConfig
from neural_models.train_config import TrainConfig


def test_layout_codes_are_enums_with_one_rule_each():
    assert set(layout.PRESENCE_RULES) == set(layout.Presence)
    assert set(layout.TRAILING_SHAPES) == set(layout.Trailing)
    for column in layout.COLUMNS:
        assert isinstance(column.trailing, layout.Trailing) and isinstance(column.when, layout.Presence)
    assert layout.Column("records", "x", ("<i8",), "A", "has_positions").when is layout.Presence.HAS_POSITIONS
    with pytest.raises(KeyError):
        layout.column_present("has_wings", synthetic_meta())
    meta = synthetic_meta(feature_dim=6, entity_feature_dim=3, dtype="float16")
    shapes = {c.path: (layout.stored_dtype(c, meta).str, layout.trailing_shape(c, meta)) for c in layout.present_columns(meta)}
    assert shapes["/patches/features"] == ("<f2", (6,)) and shapes["/entities/features"] == ("<f2", (3,))
    assert shapes["/records/sha256"] == ("|u1", (32,)) and shapes["/records/bridge"] == ("<i8", (2,))
    assert "/patches/tiles" not in shapes and "/entities/features" not in {
        c.path for c in layout.present_columns(synthetic_meta(feature_dim=6))}


def test_generator_config_fills_defaults_from_one_place_and_refuses_unknown_settings():
    partial = GeneratorConfig.coerce({"swin": {"embed_dim": 8}, "t5": {}, "projection": {"registers": 2},
                                      "resolution": {"mode": "fixed", "fixed_size": [64, 64]}})
    assert partial.projection == ProjectionConfig(registers=2)
    assert partial.resolution == ResolutionConfig(mode="fixed", fixed_size=(64, 64))  # max_side: the default
    assert GeneratorConfig.coerce({}) == GeneratorConfig()
    assert GeneratorConfig.coerce(partial.to_dict()) == partial and GeneratorConfig.coerce(partial) == partial
    assert partial.to_dict()["resolution"] == {"mode": "fixed", "max_side": 512, "fixed_size": [64, 64]}
    with pytest.raises(ValueError, match="registres"):
        GeneratorConfig.coerce({"projection": {"registres": 2}})
    with pytest.raises(ValueError, match="resolutions"):
        GeneratorConfig.coerce({"resolutions": {}})


def test_report_generator_takes_the_typed_config_or_its_dict_form():
    pytest.importorskip("transformers")
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    as_dict = tiny_config(64)
    as_dict["resolution"] = {"mode": "fixed", "fixed_size": [128, 128]}
    typed = GeneratorConfig.coerce(as_dict)
    a, b = ReportGenerator(as_dict), ReportGenerator(typed)
    assert a.config == b.config and a.settings == b.settings
    assert a.settings.resolution.max_side == ResolutionConfig().max_side
    assert a.plan((100, 90)).working_size == b.plan((100, 90)).working_size
    a.config["resolution"]["mode"] = "native"  # a copy: the model's settings do not change
    assert a.settings.resolution.mode == "fixed"


def _flags(register) -> dict:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="verb"))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {a.dest: a.default for a in p._actions} for name, p in sub.choices.items()}


def test_training_flags_read_their_defaults_from_the_configs():
    from neural_builders.cli.finetune_cmd import register as finetune
    from neural_models.cli.train_cmd import register as train
    flags = _flags(train)["train"]
    for f in dataclasses.fields(TrainConfig):
        if f.name != "weight_decay":  # no flag for it
            assert flags[f.name] == getattr(TrainConfig(), f.name)
    flags = _flags(finetune)["finetune"]
    for name in ("steps", "batch_size", "lr", "freeze_encoder_steps", "checkpoint_every", "seed", "device"):
        assert flags[name] == getattr(FinetuneConfig(), name)
    assert (flags["resolution"], flags["max_side"], flags["fixed_size"]) == (
        ResolutionConfig().mode, ResolutionConfig().max_side, ResolutionConfig().fixed_size[0])


def test_one_name_per_concept():
    pytest.importorskip("torch")
    from neural_builders.vlm import train as vlm_train
    from neural_models import train as mpnn_train
    assert mpnn_train.TrainConfig is TrainConfig
    assert vlm_train.TrainConfig is FinetuneConfig  # the former name, an alias for one minor version
    assert not {f.name for f in dataclasses.fields(TrainConfig)} >= {"steps"}


def test_distributed_flags_read_their_defaults_from_train_config():
    pytest.importorskip("torch")
    from neural_models.ddp_train import DISTRIBUTED_MAX_EPOCHS, build_parser
    args = build_parser().parse_args(["--data", "x"])
    for name in ("model", "hidden", "dropout", "lr", "patience", "batch_size", "workers", "seed"):
        assert getattr(args, name) == getattr(TrainConfig(), name)
    assert args.max_epochs == DISTRIBUTED_MAX_EPOCHS == 30


def test_reading_the_defaults_does_not_import_torch():
    code = ("import sys, argparse\n"
            "from neural_builders.cli.finetune_cmd import register as f\n"
            "from neural_models.cli.train_cmd import register as t\n"
            "sub = argparse.ArgumentParser().add_subparsers()\n"
            "f(sub); t(sub)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
