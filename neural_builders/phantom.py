"""A synthetic chest-radiograph phantom with planted lesions and matching reports.

No patient data: every image is drawn from a few smooth shapes. Each case is a PA-view-like
grayscale image (white = dense) with two lung fields, mediastinum and heart, spine, ribs,
clavicles, diaphragm domes and noise. *Positive* cases (label pneumonia = 1) get one or two
opacity blobs inside a lung at a chosen side and zone; the report names exactly that place
("Focal consolidation in the right lower zone, suggestive of pneumonia."), so a model can learn
to look "where the report says". *Negative* cases get a normal report ("No focal
consolidation. No pleural effusion. Lungs are clear.").

``report_style="findings"`` (what the demo uses) writes reports made only of image findings: one
sentence per lesion tying the finding to its place ("Focal opacity in the left lower zone."), an
impression that repeats the place, no background sentences, and negatives that name both sides
("No focal opacity in the right or left lung."). ``lesion_radius`` / ``lesion_contrast`` set the
ranges of lesion size and density (the demo uses larger, denser lesions than the defaults).

Conventions:

* **Sides are the patient's**, displayed as a PA radiograph: the patient's *right* lung is on
  the image's *left* (low column indices).
* **Zones** split each lung field's height into thirds: upper, middle, lower.
* **Boxes** are ``[row_start, col_start, row_stop, col_stop]`` (stop exclusive), the convention
  of :meth:`neural_format.format.record.Record.patch_boxes`.
* Case ``i`` of seed ``s`` is drawn from ``np.random.default_rng([s, i])``: the same case comes
  out whatever the number of cases generated.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np
from . import optional_deps

SIDES = ("right", "left")
ZONES = ("upper", "middle", "lower")

_POSITIVE_TEMPLATES = (
    "Focal consolidation in the {loc}, suggestive of pneumonia.",
    "Patchy airspace opacity in the {loc}, consistent with pneumonia.",
    "There is a focal opacity in the {loc}, concerning for pneumonia.",
    "Consolidation in the {loc}, compatible with pneumonia.",
)
_NEGATIVE_FINDINGS = (
    "No focal consolidation. No pleural effusion. Lungs are clear.",
    "The lungs are clear. No focal consolidation, pleural effusion or pneumothorax.",
    "No focal airspace opacity. No pleural effusion or pneumothorax. Lungs are clear.",
    "Lungs are clear without focal consolidation. No pleural effusion.",
)
# report_style="findings": every sentence is about the image. One sentence per lesion ties the
# finding to its place, the impression repeats the place, and negatives name both sides, so no
# sentence is image-free filler and "right" cannot be inferred from a lesion-free left lung alone.
_FINDING_NOUNS = ("Focal opacity", "Consolidation", "Patchy airspace opacity", "Focal consolidation")
_NEGATIVE_BOTH_SIDES = (
    "No focal opacity in the right or left lung.",
    "Both lungs are clear, right and left.",
    "No consolidation in either the left or the right lung.",
)
REPORT_STYLES = ("classic", "findings")
_BACKGROUND = (
    "Heart size is normal.",
    "The cardiomediastinal silhouette is within normal limits.",
    "No pneumothorax.",
    "No pleural effusion.",
    "Osseous structures are unremarkable.",
)


@dataclass
class PhantomCase:
    """One phantom case. ``image`` is float32 (H, W) in [0, 1] (white = dense); ``image_path`` is
    set once the case is written. ``lesion_boxes`` is (K, 4) int64 (see module docstring),
    ``lesion_masks`` (K, H, W) bool, ``lesion_locations`` ``[(side, zone), ...]``, K = 0 for a
    negative case."""
    case_id: str
    image: np.ndarray
    report: str
    label: int
    lesion_boxes: np.ndarray
    lesion_locations: list[tuple[str, str]] = field(default_factory=list)
    lesion_masks: Optional[np.ndarray] = None
    image_path: Optional[Path] = None

    @property
    def lesion_sides(self) -> list[str]:
        return [side for side, _ in self.lesion_locations]

    @property
    def lesion_zones(self) -> list[str]:
        return [zone for _, zone in self.lesion_locations]


def location_phrase(side: str, zone: str, rng: Optional[np.random.Generator] = None) -> str:
    """``"right lower zone"`` or, for upper/lower zones, sometimes ``"right lower lobe"``."""
    if zone in ("upper", "lower") and rng is not None and rng.random() < 0.5:
        return f"{side} {zone} lobe"
    return f"{side} {zone} zone"


def _soft_ellipse(rows, cols, centre, axes, softness=0.04) -> np.ndarray:
    d = np.sqrt(((rows - centre[0]) / axes[0]) ** 2 + ((cols - centre[1]) / axes[1]) ** 2)
    return 1.0 / (1.0 + np.exp((d - 1.0) / softness))


def _blur(image: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return image
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / max(radius / 2.0, 0.5)) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, radius, mode="edge")
    out = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, out)


@dataclass(frozen=True)
class _Anatomy:
    lungs: tuple  # per side: (centre_row, centre_col, semi_rows, semi_cols)
    lung_masks: tuple
    lung_rows: tuple  # per side: (top, bottom) rows where the lung mask is solid
    heart: np.ndarray


def _draw_body(rng: np.random.Generator, size: tuple[int, int]):
    H, W = size
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float64)
    j = lambda scale=0.04: 1.0 + rng.uniform(-scale, scale)  # noqa: E731 - small anatomical jitter
    image = np.full((H, W), 0.04)
    thorax = _soft_ellipse(rows, cols, (0.55 * H, 0.5 * W), (0.55 * H * j(), 0.46 * W * j()), 0.03)
    image += 0.42 * thorax
    lungs, masks, extents = [], [], []
    for k, side in enumerate(SIDES):
        sign = -1 if side == "right" else 1  # patient's right lung on the image's left
        centre = (0.47 * H * j(), (0.5 + sign * 0.2 * j()) * W)
        axes = (0.31 * H * j(), 0.13 * W * j())
        mask = _soft_ellipse(rows, cols, centre, axes, 0.05)
        # diaphragm dome: cut the lung's bottom along a convex curve
        dome = centre[0] + 0.97 * axes[0] - 0.22 * axes[0] * (1 - ((cols - centre[1]) / axes[1]) ** 2)
        mask *= 1.0 / (1.0 + np.exp((rows - dome) / 2.0))
        lungs.append((centre[0], centre[1], axes[0], axes[1]))
        masks.append(mask)
        solid = np.flatnonzero(mask.max(axis=1) > 0.5)
        extents.append((int(solid.min()), int(solid.max()) + 1))
    lung = np.maximum(masks[0], masks[1])
    image -= 0.33 * lung
    heart = _soft_ellipse(rows, cols, (0.63 * H * j(), 0.55 * W * j(0.03)), (0.12 * H * j(0.1), 0.15 * W * j(0.1)), 0.1)
    mediastinum = _soft_ellipse(rows, cols, (0.42 * H, 0.5 * W), (0.32 * H, 0.06 * W * j(0.1)), 0.08)
    image += 0.3 * np.maximum(heart, mediastinum) * (0.4 + 0.6 * lung) + 0.12 * np.maximum(heart, mediastinum)
    spine = np.exp(-0.5 * ((cols - 0.5 * W) / (0.025 * W)) ** 2) * (rows > 0.08 * H)
    image += 0.18 * spine
    ribs = np.zeros((H, W))
    for side_mask, (cr, cc, ar, ac) in zip(masks, lungs):
        for n in range(7):
            y0 = cr - 0.95 * ar + n * 0.27 * ar + rng.uniform(-0.01, 0.01) * H
            # posterior ribs rise from the spine, arc over the lung and fall laterally
            x = np.abs(cols - 0.5 * W) / (0.5 * W)
            curve = y0 - 0.35 * ar * x + 0.75 * ar * x ** 2
            ribs = np.maximum(ribs, np.exp(-0.5 * ((rows - curve) / (0.008 * H)) ** 2) * side_mask)
    image += 0.08 * ribs
    for sign in (-1, 1):  # clavicles
        curve = 0.17 * H + 0.05 * H * ((cols - 0.5 * W) / (0.3 * W)) ** 2
        reach = np.abs(cols - (0.5 + sign * 0.17) * W) < 0.16 * W
        image += 0.16 * np.exp(-0.5 * ((rows - curve) / (0.012 * H)) ** 2) * reach * thorax
    return image, _Anatomy(tuple(lungs), tuple(masks), tuple(extents), np.maximum(heart, mediastinum))


def _plant_lesion(rng, anatomy: _Anatomy, side: str, zone: str, size, radius_range=(0.03, 0.075),
                  contrast_range=(0.3, 0.45)):
    H, W = size
    k = SIDES.index(side)
    mask = anatomy.lung_masks[k]
    top, bottom = anatomy.lung_rows[k]
    third = (bottom - top) / 3.0
    z = ZONES.index(zone)
    radius = rng.uniform(*radius_range) * min(H, W)
    row_lo, row_hi = top + z * third + 0.3 * radius, top + (z + 1) * third - 0.3 * radius
    # lesions stay off the heart shadow so they are clearly visible
    candidates = np.argwhere((mask > 0.9) & (anatomy.heart < 0.2))
    in_zone = candidates[(candidates[:, 0] >= row_lo) & (candidates[:, 0] < row_hi)]
    if in_zone.size == 0:
        in_zone = candidates
    centre = in_zone[rng.integers(len(in_zone))].astype(np.float64)
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float64)
    blob = np.zeros((H, W))
    for _ in range(3):  # an irregular opacity: three overlapping Gaussian lobes
        c = centre + rng.normal(0, 0.3 * radius, 2)
        s = radius * rng.uniform(0.45, 0.7)
        blob = np.maximum(blob, np.exp(-0.5 * (((rows - c[0]) ** 2 + (cols - c[1]) ** 2) / s ** 2)))
    blob *= np.clip(mask * 1.2, 0, 1)
    lesion_mask = blob > 0.3
    if not lesion_mask.any():
        lesion_mask = blob >= blob.max()
    r, c = np.nonzero(lesion_mask)
    box = np.array([r.min(), c.min(), r.max() + 1, c.max() + 1], np.int64)
    return blob * rng.uniform(*contrast_range), lesion_mask, box


@dataclass(frozen=True)
class PhantomStyle:
    """How phantoms look and are reported: :func:`make_case`'s settings, with its defaults.

    ``generate_cases(n, seed=..., size=..., **style.kwargs())`` draws cases in this style.
    """
    positive_fraction: float = 0.5
    two_lesion_fraction: float = 0.25
    noise: float = 0.02
    lesion_radius: tuple[float, float] = (0.03, 0.075)
    lesion_contrast: tuple[float, float] = (0.3, 0.45)
    report_style: str = "classic"

    def kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_STYLE = PhantomStyle()


def make_case(seed: int, index: int, *, size=(256, 256), positive: Optional[bool] = None,
              positive_fraction: float = _STYLE.positive_fraction, two_lesion_fraction: float = _STYLE.two_lesion_fraction,
              noise: float = _STYLE.noise, lesion_radius=_STYLE.lesion_radius, lesion_contrast=_STYLE.lesion_contrast,
              report_style: str = _STYLE.report_style) -> PhantomCase:
    """Case ``index`` of the phantom with ``seed`` (``positive`` None = drawn with
    ``positive_fraction``). ``lesion_radius`` is a range of lesion radii as fractions of the
    short side, ``lesion_contrast`` a range of peak added density; ``report_style`` is
    ``"classic"`` (findings plus normal background sentences) or ``"findings"`` (only sentences
    about the lungs' findings and their places; see ``_FINDING_NOUNS``)."""
    if report_style not in REPORT_STYLES:
        raise ValueError(f"report_style must be one of {REPORT_STYLES}, not {report_style!r}")
    rng = np.random.default_rng([int(seed), int(index)])
    size = (int(size[0]), int(size[1])) if np.ndim(size) != 0 else (int(size), int(size))
    image, anatomy = _draw_body(rng, size)
    if positive is None:
        positive = bool(rng.random() < positive_fraction)
    locations, boxes, masks = [], [], []
    if positive:
        count = 2 if rng.random() < two_lesion_fraction else 1
        places = [(s, z) for s in SIDES for z in ZONES]
        for p in rng.choice(len(places), size=count, replace=False):
            side, zone = places[int(p)]
            blob, mask, box = _plant_lesion(rng, anatomy, side, zone, size, lesion_radius, lesion_contrast)
            image += blob
            locations.append((side, zone))
            boxes.append(box)
            masks.append(mask)
    image = _blur(image, max(1, round(min(size) / 200)))
    image += rng.normal(0.0, noise, size)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    report = _findings_report(rng, locations) if report_style == "findings" else _report(rng, locations)
    return PhantomCase(
        case_id=f"phantom-{seed}-{index:05d}", image=image, report=report, label=int(bool(locations)),
        lesion_boxes=np.array(boxes, np.int64).reshape(-1, 4), lesion_locations=locations,
        lesion_masks=np.array(masks, bool).reshape(-1, *size))


def _report(rng, locations) -> str:
    background = [s for s in _BACKGROUND if rng.random() < 0.5]
    if not locations:
        findings = _NEGATIVE_FINDINGS[rng.integers(len(_NEGATIVE_FINDINGS))]
        background = [s for s in background if "effusion" not in s]
        return " ".join(["FINDINGS:", *background[:1], findings, "IMPRESSION: No acute cardiopulmonary abnormality."])
    phrases = [location_phrase(side, zone, rng) for side, zone in locations]
    where = phrases[0] if len(phrases) == 1 else f"{phrases[0]} and the {phrases[1]}"
    finding = _POSITIVE_TEMPLATES[rng.integers(len(_POSITIVE_TEMPLATES))].format(loc=where)
    if len(locations) > 1:
        finding = finding.replace("pneumonia", "multifocal pneumonia")
    extra = " ".join(s for s in background if "pneumothorax" in s or "Heart" in s)
    return " ".join(p for p in ("FINDINGS:", finding, extra, "IMPRESSION: Pneumonia.") if p)


def _findings_report(rng, locations) -> str:
    if not locations:
        negative = _NEGATIVE_BOTH_SIDES[rng.integers(len(_NEGATIVE_BOTH_SIDES))]
        return f"FINDINGS: {negative} IMPRESSION: No pneumonia."
    sentences = [f"{_FINDING_NOUNS[rng.integers(len(_FINDING_NOUNS))]} in the {location_phrase(side, zone, rng)}."
                 for side, zone in locations]
    where = " and ".join(f"{side} {zone}" for side, zone in locations)
    return f"FINDINGS: {' '.join(sentences)} IMPRESSION: Pneumonia, {where}."


def generate_cases(n: int, *, seed: int = 0, size=(256, 256), **kwargs) -> list[PhantomCase]:
    """``n`` cases; case ``i`` is ``make_case(seed, i, ...)``."""
    return [make_case(seed, i, size=size, **kwargs) for i in range(int(n))]


def write_cases(cases: list[PhantomCase], out_dir, *, bit_depth: int = 8) -> dict:
    """Write ``images/<case_id>.png``, ``reports.csv`` (id, report, pneumonia) and
    ``lesions.json`` (boxes, locations, labels) under ``out_dir``; set each case's
    ``image_path``. Returns the three paths. ``bit_depth`` is 8 or 16."""
    Image = optional_deps.load("PIL.Image", needed_by="write_cases")
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    truth = {}
    for case in cases:
        path = images / f"{case.case_id}.png"
        if bit_depth == 16:
            data = np.round(case.image * 65535.0).astype(np.uint16)
            Image.fromarray(data).save(path)
        elif bit_depth == 8:
            Image.fromarray(np.round(case.image * 255.0).astype(np.uint8), mode="L").save(path)
        else:
            raise ValueError("bit_depth must be 8 or 16")
        case.image_path = path
        truth[case.case_id] = {"label": case.label, "lesion_boxes": case.lesion_boxes.tolist(),
                               "lesion_locations": [list(loc) for loc in case.lesion_locations],
                               "image_size": list(case.image.shape)}
    reports = out / "reports.csv"
    with open(reports, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "report", "pneumonia"])
        for case in cases:
            writer.writerow([case.case_id, case.report, case.label])
    lesions = out / "lesions.json"
    lesions.write_text(json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8")
    return {"images": images, "reports": reports, "lesions": lesions}


def read_truth(out_dir) -> dict:
    """The ``lesions.json`` ground truth written by :func:`write_cases` (boxes as arrays)."""
    truth = json.loads((Path(out_dir) / "lesions.json").read_text(encoding="utf-8"))
    for entry in truth.values():
        entry["lesion_boxes"] = np.array(entry["lesion_boxes"], np.int64).reshape(-1, 4)
        entry["lesion_locations"] = [tuple(loc) for loc in entry["lesion_locations"]]
    return truth
