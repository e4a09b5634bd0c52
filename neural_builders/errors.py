"""Typed errors of the builders (images + reports -> collection files).

They join the SDK's one error family: catch :class:`neural_format.errors.NeuralFormatError` to
catch them all. Codes are ``NB-*`` (builder input), kept stable so skip reasons and logs can be
grepped and counted.

What each code means is in the one table of every error code, :mod:`neural_format.error_codes`
(``BUILDER_CODES``); the constructors refuse a code outside it.
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
NO_GENERATOR = "NB-G001"


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


class NoGeneratorError(NeuralFormatError, FileNotFoundError):
    """The directory given as a report generator holds none (code ``NB-G001``): no
    ``config.json``, a config of another kind (e.g. a trained MPNN's), or weights that do not fit
    it. A ``FileNotFoundError``, as the generator's loader raised before it was coded."""

    def __init__(self, message: str, *, location: str, expected: object = None, found: object = None):
        super().__init__(NO_GENERATOR, message, location=location, expected=expected, found=found)
