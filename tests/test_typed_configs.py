"""Configuration is typed, with each default in one place (issue 15 item 8).

The layout's presence and trailing-shape codes are enums with one rule table each; the report
generator's configuration is a dataclass that also takes its old nested-dict form; the MPNN's
training (``TrainConfig``) and the generator's fine-tuning (``FinetuneConfig``) are two names for
two concepts, and the command-line flags take their defaults from them.
"""
import argparse
import dataclasses
import inspect
import subprocess
import sys

import pytest

from neural_format.format import layout
from neural_format.collections.synthetic import synthetic_meta
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


def test_demo_and_study_presets_are_typed_and_share_the_phantom_training():
    """The demo's QUICK/FULL and the phantom study's settings are dataclasses; both fine-tune the
    tiny generator through phantom_pipeline.PhantomTraining, whose FinetuneConfig is the one the
    former dicts gave (values written out here as the demo and the study used them)."""
    from neural_builders.cli.demo_cmd import FULL, QUICK, DemoSettings
    from neural_builders.phantom import PhantomStyle, make_case
    from neural_builders.phantom_pipeline import PhantomTraining, SwinShape
    from neural_models.phantom_study import DEFAULTS, StudySettings, build_parser

    assert isinstance(QUICK, DemoSettings) and isinstance(QUICK.training, PhantomTraining)
    assert (QUICK.train, QUICK.test, QUICK.size, FULL.train, FULL.test, FULL.size) == (24, 6, 128, 300, 60, 256)
    assert QUICK.training.finetune_config(seed=3) == FinetuneConfig(
        steps=12, batch_size=8, lr=3e-3, seed=3, freeze_encoder_steps=12, checkpoint_every=6)
    assert FULL.training.finetune_config(seed=0) == FinetuneConfig(
        steps=700, batch_size=16, lr=3e-3, seed=0, freeze_encoder_steps=0, checkpoint_every=350)
    assert FULL.training.swin == SwinShape(8, (1, 1, 1, 1), (1, 2, 2, 4), 1) and FULL.training.registers == 4
    assert QUICK.training.swin.overrides() == {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                                               "window_size": 4}
    longer = QUICK.with_counts(train=30, steps=20)  # the command line's --train/--steps
    assert (longer.train, longer.test, longer.training.steps, longer.training.finetune_config(0).checkpoint_every) == \
        (30, 6, 20, 10)
    # the study: every step on cached Swin features, no checkpoints, on the CPU; FinetuneConfig's lr
    assert DEFAULTS.training().finetune_config(seed=0) == FinetuneConfig(
        steps=200, batch_size=16, seed=0, checkpoint_every=0, device="cpu", freeze_encoder_steps=200)
    assert PhantomTraining(steps=5, batch_size=2).finetune_config(0).lr == FinetuneConfig().lr
    # the phantoms' style: make_case's defaults are PhantomStyle's
    defaults = {k: v.default for k, v in inspect.signature(make_case).parameters.items()}
    assert {k: defaults[k] for k in PhantomStyle().kwargs()} == PhantomStyle().kwargs()
    # the study's flags read StudySettings
    flags = vars(build_parser().parse_args(["--out", "x"]))
    for f in dataclasses.fields(StudySettings):
        assert flags[f.name] == getattr(DEFAULTS, f.name), f.name


def test_model_flags_read_bootstrap_and_generation_defaults_from_one_place():
    from neural_models.cli.evaluate_cmd import register as evaluate
    from neural_models.cli.generate_reports_cmd import register as generate
    from neural_models.cli.train_cmd import register as train
    from neural_models.metrics import BOOTSTRAP_RESAMPLES, summarise
    from neural_models.report_generation import generate_collection
    assert _flags(train)["train"]["bootstrap"] == _flags(evaluate)["evaluate"]["bootstrap"] == BOOTSTRAP_RESAMPLES
    flags = _flags(generate)["generate-reports"]
    assert flags["bootstrap"] == inspect.signature(summarise).parameters["n_resamples"].default == BOOTSTRAP_RESAMPLES
    signature = inspect.signature(generate_collection).parameters
    assert (flags["batch_size"], flags["max_new_tokens"]) == (signature["batch_size"].default,
                                                              signature["max_new_tokens"].default)


def test_scoring_batch_size_is_named_once():
    pytest.importorskip("torch")
    from neural_models import ddp_train, train
    from neural_models.train_config import PREDICT_BATCH_SIZE
    assert inspect.signature(train.predict).parameters["batch_size"].default == PREDICT_BATCH_SIZE
    assert ddp_train.PREDICT_BATCH_SIZE == PREDICT_BATCH_SIZE


def test_core_and_render_flags_read_their_defaults_from_one_place():
    """The writer's block size, the pruning policy's minimum and the figure's panel sizes are
    named once; the flags and the functions that restated them read the one value."""
    from neural_builders import render
    from neural_builders.cli.render_cmd import register as render_cmd
    from neural_format.cli.merge_cmd import merge, register as merge_cmd
    from neural_format.cli.reprune_cmd import register as reprune_cmd
    from neural_format.cli.split_cmd import register as split_cmd, split
    from neural_format.collections.collection import ShardedCollection
    from neural_format.files.writer import BATCH_RECORDS, CollectionWriter
    from neural_format.format.metadata import PruningPolicy

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    assert default(CollectionWriter, "batch_records") == BATCH_RECORDS
    assert _flags(merge_cmd)["merge"]["batch_records"] == default(merge, "batch_records") == BATCH_RECORDS
    assert _flags(split_cmd)["split"]["batch_records"] == default(split, "batch_records") == BATCH_RECORDS
    assert default(ShardedCollection.iter_batches, "batch_records") == BATCH_RECORDS
    assert _flags(reprune_cmd)["reprune"]["min_nodes"] == PruningPolicy.model_fields["min_nodes"].default == 1
    flags = _flags(render_cmd)["render"]
    assert (flags["height"], flags["kg_width"]) == (render.PANEL_HEIGHT, render.KG_WIDTH)
    for function in (render.compute_layout, render.render_record):
        assert (default(function, "panel_height"), default(function, "kg_width")) == (render.PANEL_HEIGHT,
                                                                                     render.KG_WIDTH)


def test_model_width_and_dropout_and_the_converter_batch_are_named_once():
    pytest.importorskip("torch_geometric")
    from neural_format.convert import driver
    from neural_models import gcn, hetero, registry
    from neural_models.train_config import DROPOUT, HIDDEN

    def defaults(function):
        parameters = inspect.signature(function).parameters
        return parameters["hidden"].default, parameters["dropout"].default

    assert (TrainConfig().hidden, TrainConfig().dropout) == (HIDDEN, DROPOUT)
    for function in (registry.new_model, gcn.FusedGCN, hetero.HeteroFusedGNN):
        assert defaults(function) == (HIDDEN, DROPOUT), function
    for function in (driver.convert_pickle, driver.convert_graphs):
        assert inspect.signature(function).parameters["batch_records"].default == driver.CONVERT_BATCH_RECORDS
