"""The synthetic phantom: determinism, visible lesions where the report says, and files on disk."""
import numpy as np
import pytest

from neural_builders.inputs import load_image, load_reports_csv, pair_inputs
from neural_builders.kg import get_extractor
from neural_builders.phantom import SIDES, ZONES, generate_cases, make_case, read_truth, write_cases

SIZE = (128, 128)


@pytest.fixture(scope="module")
def cases():
    return generate_cases(12, seed=11, size=SIZE)


def test_deterministic_and_independent_of_count(cases):
    again = generate_cases(12, seed=11, size=SIZE)
    for a, b in zip(cases, again):
        assert a.report == b.report and np.array_equal(a.image, b.image)
        assert np.array_equal(a.lesion_boxes, b.lesion_boxes)
    single = make_case(11, 5, size=SIZE)
    assert np.array_equal(single.image, cases[5].image) and single.report == cases[5].report
    assert not np.array_equal(make_case(12, 5, size=SIZE).image, cases[5].image)


def test_images_are_valid_and_mixed_labels(cases):
    labels = [c.label for c in cases]
    assert 0 < sum(labels) < len(labels)
    for case in cases:
        assert case.image.shape == SIZE and case.image.dtype == np.float32
        assert 0.0 <= case.image.min() and case.image.max() <= 1.0
        assert case.label == int(len(case.lesion_boxes) > 0) == int(bool(case.lesion_locations))


def test_lesions_are_where_the_report_says_and_visible():
    extractor = get_extractor("rules")
    seen = set()
    for index in range(30):
        case = make_case(4, index, size=(160, 144), positive=True, two_lesion_fraction=0.0)
        (side, zone), = case.lesion_locations
        seen.add((side, zone))
        H, W = case.image.shape
        r0, c0, r1, c1 = case.lesion_boxes[0]
        assert ((c0 + c1) / 2 < W / 2) == (side == "right")  # patient's right is on the image's left
        mask = case.lesion_masks[0]
        assert mask[r0:r1, c0:c1].any() and not mask[:r0].any() and not mask[:, c1:].any()
        rows = np.nonzero(mask)[0].mean() / H
        assert {"upper": rows < 0.45, "middle": 0.3 < rows < 0.65, "lower": rows > 0.5}[zone], (zone, rows)
        # the same body without the lesion (the body is drawn first from the same stream)
        healthy = make_case(4, index, size=(160, 144), positive=False)
        assert (case.image[mask] - healthy.image[mask]).mean() > 0.12  # clearly visible
        assert np.abs(case.image[~mask] - healthy.image[~mask]).mean() < 0.05
        anatomy = [e.text for e in extractor.extract(case.report).entities if e.type == "anatomy"]
        assert any(a.startswith(f"{side} {zone}") for a in anatomy), (case.report, anatomy)
    assert seen == {(s, z) for s in SIDES for z in ZONES}


def test_reports_name_findings_with_the_right_assertion(cases):
    extractor = get_extractor("rules")
    for case in cases:
        kg = extractor.extract(case.report)
        states = {e.text: e.assertion for e in kg.entities if e.type == "finding"}
        if case.label:
            assert any(states.get(f) == "present" for f in ("consolidation", "opacity", "airspace opacity"))
            assert "pneumonia" in states and states["pneumonia"] != "absent"
            located = {t for s, r, t in kg.triples() if r == "located_at"}
            for side, zone in case.lesion_locations:
                assert any(t.startswith(f"{side} {zone}") for t in located), case.report
        else:
            assert "present" not in {a for t, a in states.items() if t != "pneumothorax"}, case.report


def test_write_cases_round_trip(tmp_path, cases):
    paths = write_cases(cases[:4], tmp_path)
    reports = load_reports_csv(paths["reports"])
    assert [r.report_id for r in reports] == [c.case_id for c in cases[:4]]
    pairs, skipped = pair_inputs(paths["images"], reports)
    assert len(pairs) == 4 and skipped == []
    loaded = load_image(cases[0].image_path)
    assert loaded.source_kind == "png" and np.abs(loaded.pixels - cases[0].image).max() <= 0.5 / 255 + 1e-6
    truth = read_truth(tmp_path)
    for case in cases[:4]:
        assert np.array_equal(truth[case.case_id]["lesion_boxes"], case.lesion_boxes)
        assert truth[case.case_id]["label"] == case.label
    write_cases(cases[:1], tmp_path / "deep", bit_depth=16)
    assert load_image(cases[0].image_path).normalisation == "full-range(16-bit)"


def test_findings_style_reports_are_all_findings_and_places():
    extractor = get_extractor("rules")
    for index in range(16):
        case = make_case(3, index, size=SIZE, report_style="findings", two_lesion_fraction=0.5)
        text = case.report.lower()
        assert "heart" not in text and "pneumothorax" not in text and "osseous" not in text  # no filler
        kg = extractor.extract(case.report)
        states = {e.text: e.assertion for e in kg.entities if e.type == "finding"}
        if case.label:
            located = {t for s, r, t in kg.triples() if r == "located_at"}
            for side, zone in case.lesion_locations:
                assert any(t.startswith(f"{side} {zone}") for t in located), case.report
                assert f"{side} {zone}" in text.split("impression:")[1]  # the impression repeats the place
            assert states.get("pneumonia") == "present"
        else:
            assert "right" in text and "left" in text  # negatives name both sides: no side shortcut
            assert "present" not in set(states.values()), case.report
    with pytest.raises(ValueError, match="report_style"):
        make_case(3, 0, size=SIZE, report_style="prose")


def test_lesion_size_and_contrast_ranges_are_honoured():
    small = make_case(5, 1, size=SIZE, positive=True, two_lesion_fraction=0.0)
    big = make_case(5, 1, size=SIZE, positive=True, two_lesion_fraction=0.0,
                    lesion_radius=(0.08, 0.08), lesion_contrast=(0.6, 0.6))
    healthy = make_case(5, 1, size=SIZE, positive=False)
    assert big.lesion_masks[0].sum() > small.lesion_masks[0].sum()
    mask = big.lesion_masks[0]
    assert (big.image[mask] - healthy.image[mask]).mean() > (small.image[small.lesion_masks[0]]
                                                            - healthy.image[small.lesion_masks[0]]).mean()
