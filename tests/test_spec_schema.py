"""The committed JSON Schemas are exactly what the pydantic models generate."""
import json

from neural_format import schema
from neural_format.metadata import CollectionMeta
from neural_format.synthetic import synthetic_meta


def test_committed_schemas_match_the_models():
    assert schema.drift() == [], "run: python -m neural_format.schema"


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
