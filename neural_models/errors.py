"""Typed errors of the reference models (saved models and the collections they score).

They join the SDK's one error family (:class:`neural_format.errors.NeuralFormatError`), so the
CLI reports them as one coded line, and keep the built-in type callers already catch. Codes:

``NM-M001`` (no saved model in the directory given) and ``NM-F001`` (a collection's node features
do not fit the model's layout); the one table of every code is :mod:`neural_format.error_codes`.
"""
from __future__ import annotations

from neural_format.errors import NeuralFormatError

NO_MODEL = "NM-M001"
FEATURES_MISMATCH = "NM-F001"


class NoModelError(NeuralFormatError, FileNotFoundError):
    """The directory holds no ``config.json`` of a saved model (code ``NM-M001``)."""


class FeatureLayoutError(NeuralFormatError, ValueError):
    """A collection's feature widths or vocabularies differ from the model's (code ``NM-F001``)."""
