"""JSON Schemas of the collection metadata and the manifest, generated from the pydantic models.

    python -m neural_format.format.schema            # (re)write spec/schema/*.schema.json
    python -m neural_format.format.schema --check    # exit 1 when the committed files differ

The pydantic models in :mod:`neural_format.format.metadata` are the single source of truth; the files
under ``spec/schema/`` are their published form, and a test fails when the two drift apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .metadata import CollectionMeta, Manifest
from ..version import FORMAT_VERSION

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "spec" / "schema"
SCHEMAS = {
    "collection-metadata.schema.json": (CollectionMeta, "Collection metadata stored as JSON in /metadata"),
    "manifest.schema.json": (Manifest, "Manifest of a collection that spans several files"),
}


def schema_of(model, title: str) -> dict:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://neural-format.example/spec/{FORMAT_VERSION}/{model.__name__}",
            "description": f"{title} (neural-format {FORMAT_VERSION}; generated from "
                           f"neural_format.format.metadata.{model.__name__} by python -m neural_format.format.schema)",
            **schema}


def render(model, title: str) -> str:
    return json.dumps(schema_of(model, title), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# The pydantic release from which the committed text is reproduced exactly (the dev extra's bound).
# Older releases the SDK supports (from 2.5) write the same schemas in other words: without the
# ``"type": "string"`` that a ``Literal``'s ``const`` implies, and ``0.0`` for ``0``.
EXACT_FROM_PYDANTIC = (2, 11)


def implied_types_dropped(node):
    """A JSON Schema without the ``"type": "string"`` beside a string ``const`` (it implies it)."""
    if isinstance(node, list):
        return [implied_types_dropped(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: implied_types_dropped(v) for k, v in node.items()}
    if isinstance(out.get("const"), str) and out.get("type") == "string":
        del out["type"]
    return out


def _pydantic_release() -> tuple[int, ...]:
    import pydantic
    return tuple(int(part) for part in pydantic.VERSION.split(".")[:2])


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the schema files that are missing or differ from the generated schemas: in text
    under a pydantic that writes the committed text, as JSON Schemas (values compared as JSON,
    implied types dropped) under an older one."""
    exact = _pydantic_release() >= EXACT_FROM_PYDANTIC
    out = []
    for name, (model, title) in SCHEMAS.items():
        path = directory / name
        if not path.is_file():
            out.append(name)
            continue
        committed, generated = path.read_text(encoding="utf-8"), render(model, title)
        if committed == generated:
            continue
        if exact:
            out.append(name)
            continue
        try:
            same = implied_types_dropped(json.loads(committed)) == implied_types_dropped(json.loads(generated))
        except ValueError:  # not JSON at all
            same = False
        if not same:
            out.append(name)
    return out


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (model, title) in SCHEMAS.items():
        path = directory / name
        path.write_text(render(model, title), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neural_format.format.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when spec/schema differs from the models")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = drift(args.dir)
        for name in stale:
            print(f"{args.dir / name} differs from the pydantic models; run python -m neural_format.format.schema",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
