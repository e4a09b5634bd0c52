"""Per-case label values read from the label columns of a reports CSV."""
from __future__ import annotations

import csv
from typing import Sequence

# the first of these columns (case-insensitive) names the case
ID_COLUMNS = ("id", "case_id", "report_id", "image_id", "uid")


def labels_from_csv(path, names: Sequence[str]) -> dict[str, list[float]]:
    """``{id: [value per name]}`` from label columns of a reports CSV (empty or unparsable = NaN)."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        id_col = next((cols[c] for c in ID_COLUMNS if c in cols), None)
        if id_col is None:
            return {}
        for row in reader:
            values = []
            for name in names:
                raw = (row.get(cols.get(name.lower(), ""), "") or "").strip()
                try:
                    values.append(float(raw))
                except ValueError:
                    values.append(float("nan"))
            out[row[id_col].strip()] = values
    return out
