"""Builder inputs: images (DICOM, PNG, JPEG) and reports, loaded, checked and paired.

>>> from neural_builders.inputs import load_image, load_reports, pair_inputs   # doctest: +SKIP
>>> pairs, skipped = pair_inputs("images/", load_reports("reports.csv"))      # doctest: +SKIP
"""
from .dicom import load_dicom
from .image import LoadedImage, load_image, sniff_kind
from .pairing import Pair, iter_pairs, list_images, pair_inputs
from .raster import load_raster
from .reports import (Report, Sections, extract_sections, load_iu_xray_reports, load_reports,
                      load_reports_csv, load_reports_dir, report_from_text)
from .skipped import Skipped, record_skip

__all__ = [
    "LoadedImage", "Pair", "Report", "Sections", "Skipped", "extract_sections", "iter_pairs",
    "list_images", "load_dicom", "load_image", "load_iu_xray_reports", "load_raster", "load_reports",
    "load_reports_csv", "load_reports_dir", "pair_inputs", "record_skip", "report_from_text", "sniff_kind",
]
