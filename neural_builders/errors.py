"""Typed errors of the builders (images + reports -> collection files).

They join the SDK's one error family: catch :class:`neural_format.errors.NeuralFormatError` to
catch them all. Codes are ``NB-*`` (builder input), kept stable so skip reasons and logs can be
grepped and counted:

========  ===============================================================
NB-I001   image file missing, empty or unreadable by its decoder
NB-I002   image content is of no supported kind (not DICOM, PNG or JPEG)
NB-I003   image cannot be used (no pixel data, multi-frame, constant image,
          unsupported photometric interpretation, over 64 Mpixel)
NB-R001   report source missing or unreadable (file, CSV, archive)
NB-R002   report source holds a forbidden construct (XML DTD or entity)
NB-R003   report source has the wrong columns or structure
NB-P001   an image and a report could not be paired
NB-K001   knowledge-graph extractor unknown or its package is missing
NB-E001   sentence-embedding model directory missing or incomplete
NB-D001   the requested device or process-group backend cannot be had
          (a GPU asked for where none is visible, cuda:N past the last GPU,
          nccl for CPU tensors or for ranks sharing a GPU, a bad launch)
========  ===============================================================
"""
from __future__ import annotations

from neural_format.errors import NeuralFormatError

IMAGE_UNREADABLE = "NB-I001"
IMAGE_UNSUPPORTED = "NB-I002"
IMAGE_UNUSABLE = "NB-I003"
REPORT_UNREADABLE = "NB-R001"
REPORT_FORBIDDEN = "NB-R002"
REPORT_STRUCTURE = "NB-R003"
PAIRING = "NB-P001"
EXTRACTOR_UNAVAILABLE = "NB-K001"
EMBEDDER_UNAVAILABLE = "NB-E001"
DEVICE_UNAVAILABLE = "NB-D001"


class BuildInputError(NeuralFormatError):
    """An input of the build (image, report, model directory, extractor) cannot be used.

    ``location`` names the input (a file path, an archive member or a CSV row), never a
    patient identifier taken from inside the input.
    """

    def __init__(self, code: str, message: str, *, location: str = "-", expected: object = None,
                 found: object = None):
        super().__init__(code, message, location=location, expected=expected, found=found)


class DeviceError(NeuralFormatError):
    """The device or backend a run asks for cannot be used here (see :mod:`neural_builders.devices`)."""

    def __init__(self, code: str, message: str, *, location: str = "-", expected: object = None,
                 found: object = None):
        super().__init__(code, message, location=location, expected=expected, found=found)
