"""Match images to reports by ID; every input that cannot be used becomes a :class:`Skipped` entry.

An image's ID is its file stem (``CXR10_IM-0002-1001.png`` -> ``CXR10_IM-0002-1001``). It pairs
with the report whose ``report_id`` equals it, or whose ``image_ids`` list it (IU X-ray: one
report, a PA and a lateral image). Skip reasons, all logged at WARNING:

* stage ``image``: the image cannot be read (with the loader's NB-I* code), or its ID repeats;
* stage ``report``: the paired report has no findings/impression text;
* stage ``pairing``: an image without a report, a report without an image, or a report ID that
  repeats.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Union

from ..errors import PAIRING, BuildInputError
from .image import LoadedImage, load_image
from .reports import Report
from .skipped import Skipped, record_skip

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ""}

ImagesArg = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]], Mapping[str, Union[str, os.PathLike]]]


@dataclass
class Pair:
    """One usable case: its ID (the image ID), the image file, the loaded image (None when
    pairing was asked not to load) and the report."""
    case_id: str
    image_path: Path
    image: Optional[LoadedImage]
    report: Report


def list_images(images: ImagesArg) -> list[tuple[str, Path]]:
    """``(image_id, path)`` for a directory (files with an image suffix or none, sorted, hidden
    files ignored), an iterable of paths, or a mapping ``id -> path``."""
    if isinstance(images, Mapping):
        return [(str(k), Path(v)) for k, v in images.items()]
    if isinstance(images, (str, os.PathLike)):
        root = Path(images)
        if not root.is_dir():
            raise BuildInputError(PAIRING, "image directory does not exist", location=str(root))
        paths = [p for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in IMAGE_SUFFIXES]
        return [(p.stem, p) for p in paths]
    return [(Path(p).stem, Path(p)) for p in images]


def iter_pairs(images: ImagesArg, reports: Union[Iterable[Report], Mapping[str, Report]],
               skipped: list, *, load_images: bool = True) -> Iterator[Pair]:
    """Yield usable pairs one at a time (so only one decoded image need be in memory), appending
    a :class:`Skipped` to ``skipped`` for every input left out. Reports that no image used are
    recorded after the last pair."""
    report_list = list(reports.values()) if isinstance(reports, Mapping) else list(reports)
    by_key: dict[str, Report] = {}
    for report in report_list:
        if report.report_id in by_key and by_key[report.report_id] is not report:
            record_skip(skipped, report.report_id, "pairing", "report id repeats; later copy ignored", PAIRING)
            continue
        by_key[report.report_id] = report
    for report in list(by_key.values()):
        for image_id in report.image_ids:
            by_key.setdefault(image_id, report)
    used: set[str] = set()
    seen_images: set[str] = set()
    for image_id, path in list_images(images):
        if image_id in seen_images:
            record_skip(skipped, image_id, "image", f"image id repeats ({path.name}); later file ignored", PAIRING)
            continue
        seen_images.add(image_id)
        report = by_key.get(image_id)
        if report is None:
            record_skip(skipped, image_id, "pairing", "no report with this id", PAIRING)
            continue
        used.add(report.report_id)
        if report.sections.is_empty:
            record_skip(skipped, image_id, "report", f"report {report.report_id} has no findings or impression text")
            continue
        loaded = None
        if load_images:
            try:
                loaded = load_image(path)
            except BuildInputError as exc:
                record_skip(skipped, image_id, "image", exc.message, exc.code)
                continue
        yield Pair(image_id, path, loaded, report)
    for report_id, report in by_key.items():
        if report_id == report.report_id and report_id not in used:
            record_skip(skipped, report_id, "pairing", "no image for this report", PAIRING)


def pair_inputs(images: ImagesArg, reports: Union[Iterable[Report], Mapping[str, Report]], *,
                load_images: bool = True) -> tuple[list[Pair], list[Skipped]]:
    """All usable pairs and all skips. See :func:`iter_pairs` to stream large inputs."""
    skipped: list[Skipped] = []
    pairs = list(iter_pairs(images, reports, skipped, load_images=load_images))
    return pairs, skipped
