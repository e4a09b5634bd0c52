"""The committed JSON Schemas are what the pydantic models generate (text, or schemas under an older pydantic)."""
import json

from neural_format.format import schema
from neural_format.format.metadata import CollectionMeta
from neural_format.collections.synthetic import synthetic_meta


def test_committed_schemas_match_the_models():
    """In text under the pydantic that writes them (the venv's); as JSON Schemas under an older one."""
    assert schema.drift() == [], "run: python -m neural_format.format.schema"


def test_drift_under_an_older_pydantic_compares_schemas_not_text(tmp_path, monkeypatch):
    schema.write(tmp_path)
    path = tmp_path / "manifest.schema.json"
    data = json.loads((schema.SCHEMA_DIR / "manifest.schema.json").read_text())  # as 2.11+ writes it
    assert data["properties"]["format"]["type"] == "string"
    implied = json.loads(json.dumps(data))
    del implied["properties"]["format"]["type"]  # what pydantic 2.5-2.10 write beside a const
    path.write_text(json.dumps(implied, indent=1))
    monkeypatch.setattr(schema, "EXACT_FROM_PYDANTIC", (99, 0))  # as if the venv's pydantic were older
    assert schema.drift(tmp_path) == []
    for change in ({"const": "other"}, {"type": "integer"}):
        bent = json.loads(json.dumps(data))
        bent["properties"]["format"].update(change)
        path.write_text(json.dumps(bent))
        assert schema.drift(tmp_path) == ["manifest.schema.json"], change
    path.write_text("{not json")
    assert schema.drift(tmp_path) == ["manifest.schema.json"]
    monkeypatch.setattr(schema, "EXACT_FROM_PYDANTIC", (0, 0))  # as if it were the writing release
    path.write_text(json.dumps(implied, indent=1))
    assert schema.drift(tmp_path) == ["manifest.schema.json"]  # which compares text


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
