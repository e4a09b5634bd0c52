"""The build pipeline on a few phantoms: a valid collection with typed provenance, geometry, tiles, skips."""
import hashlib
import math

import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

import neural_format as nf  # noqa: E402
from neural_builders.build import BuildConfig, BuildInput, build_collection, inputs_from_pairs, labels_from_csv  # noqa: E402
from neural_builders.inputs import load_reports, pair_inputs  # noqa: E402
from neural_builders.phantom import generate_cases, write_cases  # noqa: E402
from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.tokenizer import train_report_tokenizer  # noqa: E402
from neural_format.graphs.fusion import record_bridge  # noqa: E402
from neural_format.graphs.grid import grid_adjacency  # noqa: E402
from neural_format.format.metadata import PruningPolicy, TopKPercent  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    cases = generate_cases(5, seed=7, size=(128, 160), positive_fraction=0.6)
    files = write_cases(cases, root / "phantoms")
    (files["images"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")   # skipped: undecodable
    with open(files["reports"], "a", encoding="utf-8") as handle:
        handle.write("broken,FINDINGS: Lungs are clear.,0\n")
    tokenizer = train_report_tokenizer([c.report for c in cases])
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer))
    config["swin"].update(embed_dim=8, num_heads=[1, 1, 2, 2], depths=[1, 1, 1, 1])
    ReportGenerator(config).save_pretrained(root / "model", tokenizer=tokenizer)
    return root, cases, files


def test_build_writes_a_valid_collection_with_provenance_geometry_and_tiles(setup):
    root, cases, files = setup
    model = ReportGenerator.from_pretrained(root / "model")
    pairs, skipped = pair_inputs(files["images"], load_reports(files["reports"]), load_images=False)
    labels = labels_from_csv(files["reports"], ("pneumonia",))
    config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=25)), tiles="uint8", batch_size=2)
    out = root / "out.h5"
    summary = build_collection(inputs_from_pairs(pairs, labels), model, config, out, skipped=skipped)

    assert nf.validate(out).ok
    assert summary.records_written == len(cases)
    assert [s.id for s in summary.skipped] == ["broken"] and summary.skipped[0].stage == "image"
    assert summary.source_bytes == sum((files["images"] / f"{c.case_id}.png").stat().st_size for c in cases)
    assert summary.bytes_written == out.stat().st_size
    with nf.open(out) as reader:
        meta = reader.meta
        prov = meta.provenance
        assert prov.encoder.weights_sha256 == hashlib.sha256((root / "model" / "encoder.safetensors").read_bytes()).hexdigest()
        assert prov.decoder.weights_sha256 == hashlib.sha256((root / "model" / "decoder.safetensors").read_bytes()).hexdigest()
        assert prov.pruning.rule == TopKPercent(percent=25) and prov.pruning.applied_to == "build"
        assert prov.score_aggregation.layers == "last" and prov.kg_extractor.name
        assert prov.source_bytes == summary.source_bytes + (files["images"] / "broken.png").stat().st_size
        assert meta.tile_shape == [32, 32] and meta.patch_feature_dim == model.swin_dim
        by_id = {c.case_id: c for c in cases}
        for record in reader:
            case = by_id[record.record_id]
            g = record.geometry
            assert g.image_size == (128, 160) and g.patch_size == (32, 32) and g.grid_shape == (4, 5)
            assert record.num_patches == math.ceil(0.25 * 20)
            np.testing.assert_array_equal(record.patch_edges, grid_adjacency(record.patch_positions, "4-neighbour"))
            assert record.bridge == record_bridge(record.num_patches, record.patch_edges, record.patch_scores,
                                                  record.relations, record.entity_types, record.entity_assertions,
                                                  meta.entity_types, "score-then-relations")
            pixels = np.round(case.image * 255).astype(np.uint8)     # what the PNG holds
            for box, tile in zip(record.patch_boxes(), record.tiles):
                r0, c0, r1, c1 = box
                np.testing.assert_array_equal(tile[: r1 - r0, : c1 - c0], pixels[r0:r1, c0:c1])
            assert record.labels[0] == case.label
            assert record.report_source == "ground_truth" and "FINDINGS" not in record.report
            assert record.num_entities > 0 and record.entity_text
            assert np.isfinite(record.patch_scores).all()


def test_missing_report_is_generated_and_cli_builds(setup, capsys):
    root, cases, files = setup
    model = ReportGenerator.from_pretrained(root / "model")
    image = files["images"] / f"{cases[0].case_id}.png"
    out = root / "generated.h5"
    summary = build_collection([BuildInput(case_id="no-report", image_path=image)], model,
                               BuildConfig(max_report_tokens=12), out)
    with nf.open(out) as reader:
        record = reader[0]
        assert record.report_source == "generated" and isinstance(record.report, str)
        assert np.isnan(record.labels).all()
    assert summary.records_written == 1

    from neural_format.cli import main
    code = main(["build", "--images", str(files["images"]), "--reports", str(files["reports"]),
                 "--model", str(root / "model"), "--out", str(root / "cli.h5"), "--nucleus", "0.5"])
    text = capsys.readouterr().out
    assert code == 0 and "records written" in text and "bytes" in text
    with nf.open(root / "cli.h5") as reader:
        assert reader.meta.provenance.pruning.rule.kind == "nucleus" and len(reader) == len(cases)


def test_bridge_tie_break_option_reaches_the_config():
    import argparse

    from neural_builders.build import add_arguments, config_from_args
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--images", "i", "--reports", "r.csv", "--model", "m", "--out", "o.h5"]
    assert config_from_args(parser.parse_args(base)).bridge_tie_break == "score-then-relations"
    assert config_from_args(parser.parse_args(base + ["--bridge-tie-break", "lowest-index"])).bridge_tie_break == "lowest-index"
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--bridge-tie-break", "highest-degree"])
