"""Files a training run writes next to its weights: test predictions and metrics, as JSON.

Scores are float32 values written as JSON numbers through float64, which is exact, so a reloaded
model's predictions can be compared with the saved ones bit for bit.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PREDICTIONS_NAME = "test_predictions.json"


def write_json(path, payload) -> Path:
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return path


def write_predictions(directory, record_ids, labels, scores) -> Path:
    scores = np.asarray(scores, np.float32)
    return write_json(Path(directory) / PREDICTIONS_NAME, {
        "record_ids": list(record_ids), "labels": [float(v) for v in labels],
        "scores": [float(v) for v in scores]})


def read_predictions(directory) -> dict:
    data = json.loads((Path(directory) / PREDICTIONS_NAME).read_text(encoding="utf-8"))
    data["scores"] = np.asarray(data["scores"], np.float64).astype(np.float32)
    data["labels"] = np.asarray(data["labels"], np.float64)
    return data
