"""The committed JSON Schemas are exactly what the pydantic models generate."""
import json

from neural_format.format import schema
from neural_format.format.metadata import CollectionMeta
from neural_format.collections.synthetic import synthetic_meta


# the pydantic release from which the committed schema text is reproduced exactly (the dev extra's bound)
SCHEMA_PYDANTIC = (2, 11)


def _implied_types_dropped(node):
    """The schema with ``"type": "string"`` removed beside a string ``const``, which implies it
    (pydantic 2.5-2.10 leave it out on ``Literal`` fields; 2.11+ write it)."""
    if isinstance(node, list):
        return [_implied_types_dropped(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _implied_types_dropped(v) for k, v in node.items()}
    if isinstance(out.get("const"), str) and out.get("type") == "string":
        del out["type"]
    return out


def test_committed_schemas_match_the_models():
    """The same schemas under any supported pydantic (JSON values: 0 == 0.0); the same text under
    the release that writes them (older ones differ in number spelling and implied types)."""
    import pydantic
    for name, (model, title) in schema.SCHEMAS.items():
        committed = json.loads((schema.SCHEMA_DIR / name).read_text(encoding="utf-8"))
        generated = json.loads(schema.render(model, title))
        assert _implied_types_dropped(generated) == _implied_types_dropped(committed), \
            f"{name}: run python -m neural_format.format.schema"
    if tuple(int(p) for p in pydantic.VERSION.split(".")[:2]) >= SCHEMA_PYDANTIC:
        assert schema.drift() == [], "run: python -m neural_format.format.schema"


def test_schema_comparison_sees_a_changed_field():
    data = json.loads((schema.SCHEMA_DIR / "manifest.schema.json").read_text(encoding="utf-8"))
    changed = json.loads(json.dumps(data))
    changed["properties"]["format"]["const"] = "other"
    assert _implied_types_dropped(changed) != _implied_types_dropped(data)
    typed = json.loads(json.dumps(data))
    typed["properties"]["format"]["type"] = "integer"
    assert _implied_types_dropped(typed) != _implied_types_dropped(data)


def test_check_mode_detects_drift(tmp_path):
    schema.write(tmp_path)
    assert schema.main(["--check", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "collection-metadata.schema.json"
    data = json.loads(path.read_text())
    data["properties"].pop("spatial_axes")
    path.write_text(json.dumps(data))
    assert schema.main(["--check", "--dir", str(tmp_path)]) == 1


def test_schema_declares_the_model_fields():
    data = json.loads((schema.SCHEMA_DIR / "collection-metadata.schema.json").read_text())
    assert set(data["properties"]) == set(CollectionMeta.model_fields)
    assert set(data["required"]) == {n for n, f in CollectionMeta.model_fields.items() if f.is_required()}
    assert data["additionalProperties"] is False
    assert set(json.loads(synthetic_meta().model_dump_json())) <= set(data["properties"])


def _validator(name):
    jsonschema = __import__("pytest").importorskip("jsonschema")
    data = json.loads((schema.SCHEMA_DIR / name).read_text())
    return jsonschema.Draft202012Validator(data)


def test_schema_alone_states_the_tile_rules():
    """An implementer with only the JSON Schema gets the tile rules the pydantic model enforces."""
    validator = _validator("collection-metadata.schema.json")
    for kwargs in ({}, {"tiles": True}, {"axes": 3, "tiles": True}):
        assert not list(validator.iter_errors(json.loads(synthetic_meta(**kwargs).model_dump_json())))
    good = json.loads(synthetic_meta(tiles=True).model_dump_json())
    bad = [
        {**good, "tile_shape": [8, 8, 1]},               # a channel axis: 3 extents for 2 spatial axes
        {**good, "spatial_axes": 3, "adjacency": "6-neighbour"},  # 2 extents for 3 axes
        {**good, "tile_dtype": None},                     # shape without dtype
        {**good, "tile_shape": None},                     # dtype without shape
        {**good, "has_positions": False},                 # tiles need positions
    ]
    for case in bad:
        assert list(validator.iter_errors(case)), case
        try:
            CollectionMeta.model_validate(case)
        except ValueError:
            pass
        else:
            raise AssertionError(f"the model accepts what the schema refuses: {case}")


def test_manifest_schema_cites_the_manifest_clause():
    data = json.loads((schema.SCHEMA_DIR / "manifest.schema.json").read_text())
    assert "NF-C001" in data["description"] and "NF-S001" not in data["description"]
