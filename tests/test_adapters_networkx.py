"""record_to_networkx: node numbering, modality/position/text/type/assertion attributes, edge kinds."""
import numpy as np
import pytest

from neural_format.collections.synthetic import synthetic_meta, synthetic_records

nx = pytest.importorskip("networkx")

META = synthetic_meta(feature_dim=4)
RECORDS = list(synthetic_records(30, META, seed=11))


def test_attributes_and_edges():
    record = next(r for r in RECORDS if r.bridge is not None and r.relations.shape[0] and r.patch_edges.shape[0])
    g = record.to_networkx(entity_types=META.entity_types, relation_types=META.relation_types,
                           label_names=META.label_names, directed=True, multigraph=True)
    p, m = record.num_patches, record.num_entities
    assert g.number_of_nodes() == p + m
    assert g.graph["record_id"] == record.record_id and set(g.graph["labels"]) == {"pneumonia"}
    assert g.nodes[0]["modality"] == "patch" and g.nodes[0]["position"] == tuple(record.patch_positions[0])
    entity = g.nodes[p]
    assert entity["modality"] == "entity" and entity["text"] == record.entity_text[0]
    assert entity["type"] == record.entity_types[0] and entity["type_name"] == META.entity_types[record.entity_types[0]]
    assert entity["assertion_name"] == ("present", "absent", "uncertain")[record.entity_assertions[0]]
    kinds = [d["kind"] for _, _, d in g.edges(data=True)]
    assert kinds.count("adjacency") == record.patch_edges.shape[0]
    assert kinds.count("relation") == record.relations.shape[0] and kinds.count("bridge") == 1
    assert g.has_edge(record.bridge[0], p + record.bridge[1])


def test_undirected_default_and_unknown_codes():
    record = RECORDS[0]
    g = record.to_networkx()
    assert isinstance(g, nx.Graph) and not g.is_directed()
    record.entity_types = np.full(record.num_entities, -1, np.int16)
    record.entity_assertions = np.full(record.num_entities, -1, np.int8)
    g = record.to_networkx(entity_types=META.entity_types)
    for k in range(record.num_entities):
        node = g.nodes[record.num_patches + k]
        assert node["type"] == -1 and node["type_name"] is None and node["assertion_name"] is None
