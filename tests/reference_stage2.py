"""Write pickles laid out as the NEURAL reference's stage 2 writes them (a fixture generator).

This is our own generator, built from a description of the reference (basiralab/NEURAL,
``src/datasets.py`` stage 2 and ``src/utils.py``), not from its code. What it re-creates:

* one ``torch.save(list_of_Data, path)``, real PyG 2.x ``Data`` objects (so the pickled layout,
  ``_store`` / ``GlobalStorage`` / ``_mapping``, is exactly what torch_geometric writes);
* patches: attention scores over a ``side x side`` grid, kept where the score is above the
  ``100 - percent`` percentile (the arg-max when none is), features one row per kept patch in grid
  order; patch edges: every 4-neighbour pair of kept patches added to a Python ``set`` as the
  sorted pair of their local indices, and the edge list is that set's iteration order: each pair
  once, smaller index first;
* the KG: an undirected networkx graph of the entities (node attribute ``label`` = the text),
  cliques of the entities that share a sentence, converted by ``torch_geometric.utils.from_networkx``
  (both directions, ``label`` a Python list, ``num_nodes`` set), node features ``ones((M, 1))``
  projected by one ``nn.Linear(1, D)`` created for the first graph with entities and shared by all
  later ones: every entity row in the file is the same vector; an empty KG is ``from_networkx`` of
  an empty graph with ``x = empty((0, 1))``;
* fusion: the KG-only ``Data`` itself when no patch is kept, the visual ``Data`` itself when the
  KG is empty, else a new ``Data(x=cat, edge_index=cat(patch, KG + P, fusion))`` whose last column
  joins the first node of maximal betweenness (networkx, node order) of each side, patch -> entity;
* ``y``: one float per graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

TERMS = ("opacity", "effusion", "pneumothorax", "consolidation", "atelectasis", "cardiomegaly", "edema",
         "nodule", "right lower lobe", "left base", "pleural thickening", "infiltrate", "fracture",
         "pneumonia", "hilar prominence", "emphysema")


@dataclass
class GraphSpec:
    """One graph to write: kept grid cells (sorted), entities, sentences (lists of entity positions)."""
    kept: Sequence[int]
    entities: Sequence[str] = ()
    sentences: Sequence[Sequence[int]] = ()
    label: float = 0.0


@dataclass
class Truth:
    """What the converter must recover for one written graph."""
    patches: int
    entities: int
    fused: bool
    text: Optional[list] = None          # entity text held by the pickle (KG-only graphs keep `label`)
    bridge: Optional[tuple] = None       # (patch row, entity row)


@dataclass
class Stage2Writer:
    """Builds graphs as the reference does; one projection per writer, as one reference run has."""
    dim: int = 1024
    side: int = 12
    seed: int = 0
    projection: object = None
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        import torch
        self.rng = np.random.default_rng(self.seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    # -- the two graphs ----------------------------------------------------------------------
    def visual(self, kept: Sequence[int]):
        import torch
        from torch_geometric.data import Data
        kept = [int(g) for g in kept]
        features = torch.from_numpy(self.rng.standard_normal((len(kept), self.dim)).astype(np.float32))
        local = {g: i for i, g in enumerate(kept)}
        pairs = set()
        for g in kept:
            r, c = divmod(g, self.side)
            for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                if 0 <= r + dr < self.side and 0 <= c + dc < self.side:
                    neighbour = (r + dr) * self.side + c + dc
                    if neighbour in local:
                        pairs.add(tuple(sorted((local[g], local[neighbour]))))
        ordered = list(pairs)  # set iteration order, as the reference's list(set)
        edge_index = (torch.tensor(list(zip(*ordered)), dtype=torch.long) if ordered
                      else torch.empty((2, 0), dtype=torch.long))
        return Data(x=features, edge_index=edge_index)

    def knowledge_graph(self, entities: Sequence[str], sentences: Sequence[Sequence[int]]):
        import networkx as nx
        import torch
        from torch_geometric.utils import from_networkx
        if not entities:
            data = from_networkx(nx.Graph())
            data.x = torch.empty((0, 1), dtype=torch.float)
            return data
        graph = nx.Graph()
        for i, text in enumerate(entities):
            graph.add_node(i, label=text)
        for sentence in sentences:
            for a in range(len(sentence)):
                for b in range(a + 1, len(sentence)):
                    graph.add_edge(sentence[a], sentence[b])
        data = from_networkx(graph)
        data.x = torch.ones((data.num_nodes, 1), dtype=torch.float)
        return data

    # -- fusion ----------------------------------------------------------------------------
    @staticmethod
    def most_central(data) -> int:
        import networkx as nx
        if data.num_nodes <= 1:
            return 0
        graph = nx.Graph()
        graph.add_nodes_from(range(data.num_nodes))
        graph.add_edges_from(data.edge_index.t().tolist())
        centrality = nx.betweenness_centrality(graph)
        return max(centrality, key=centrality.get)

    def fuse(self, visual, kg):
        import torch
        from torch_geometric.data import Data
        if visual.num_nodes == 0:
            return kg
        if kg.num_nodes == 0:
            return visual
        p, e = self.most_central(visual), self.most_central(kg)
        count = visual.num_nodes
        edges = torch.cat([visual.edge_index, kg.edge_index + count,
                           torch.tensor([[p], [e + count]], dtype=torch.long)], dim=1)
        return Data(x=torch.cat([visual.x, kg.x], dim=0), edge_index=edges)

    def graph(self, spec: GraphSpec):
        """(the Data the reference would append, the truth about it)."""
        import torch
        visual = self.visual(spec.kept)
        kg = self.knowledge_graph(spec.entities, spec.sentences)
        if kg.num_nodes > 0:
            if self.projection is None:
                self.projection = torch.nn.Linear(kg.x.shape[1], self.dim)
            kg.x = self.projection(kg.x).detach()
        fused = self.fuse(visual, kg)
        fused.y = torch.tensor([float(spec.label)], dtype=torch.float)
        p, m = visual.num_nodes, kg.num_nodes
        bridge = None
        if p and m:
            bridge = (int(fused.edge_index[0, -1]), int(fused.edge_index[1, -1]) - p)
        return fused, Truth(p, m, bool(p and m), list(spec.entities) if p == 0 and m else None, bridge)

    # -- random specs ----------------------------------------------------------------------
    def kept_by_percentile(self, percent: float) -> list[int]:
        scores = self.rng.random(self.side * self.side)
        kept = np.flatnonzero(scores > np.percentile(scores, 100 - percent))
        return kept.tolist() if kept.size else [int(np.argmax(scores))]

    def random_kg(self, max_entities: int = 8) -> tuple[list[str], list[list[int]]]:
        count = int(self.rng.integers(0, max_entities + 1))
        entities = list({TERMS[k] for k in self.rng.choice(len(TERMS), count, replace=False)})
        sentences = []
        for _ in range(int(self.rng.integers(0, 4))):
            if entities:
                size = int(self.rng.integers(1, len(entities) + 1))
                sentences.append(sorted(self.rng.choice(len(entities), size, replace=False).tolist()))
        return entities, sentences

    def random_spec(self, percent: float = 10.0) -> GraphSpec:
        entities, sentences = self.random_kg()
        return GraphSpec(self.kept_by_percentile(percent), entities, sentences, float(self.rng.integers(0, 2)))


def special_specs(side: int = 12) -> list[GraphSpec]:
    """The layouts the issue names, each at least once."""
    last = side * side - 1
    return [
        GraphSpec([0, 1, 2, 50], ["effusion", "opacity"], [[0, 1]], 1.0),           # isolated boundary patch
        GraphSpec([0, 1, 13], ["edema"], [], 0.0),                                    # single isolated entity
        GraphSpec([5, 6, 7, 30], [], [], 1.0),                                        # visual-only
        GraphSpec([], ["pneumonia", "left base", "nodule"], [[0, 1], [2]], 1.0),      # KG-only, keeps `label`
        GraphSpec([], ["atelectasis"], [], 0.0),                                      # single-node KG-only
        GraphSpec([last], [], [], 0.0),                                               # single-patch visual-only
        GraphSpec([40], ["edema"], [], 1.0),                                          # one patch + one entity
        GraphSpec([0, 1, side, side + 1], ["a", "b", "c", "d"], [[0, 1, 2, 3]], 0.0),  # ties on both sides
        GraphSpec([3, 70, 100], ["fracture", "emphysema"], [], 1.0),                   # nothing touches an edge
        GraphSpec([10, 11, 12, 23, 24, 25], ["infiltrate", "edema", "nodule"], [[0, 1], [1, 2]], 0.0),  # chains
    ]


def write_reference_pickle(path: Path, specs: Sequence[GraphSpec], *, dim: int = 1024, seed: int = 0,
                           side: int = 12) -> list[Truth]:
    """``torch.save`` the graphs of ``specs`` as the reference's stage 2 would; returns the truth."""
    import torch
    writer = Stage2Writer(dim=dim, side=side, seed=seed)
    data_list, truths = [], []
    for spec in specs:
        data, truth = writer.graph(spec)
        data_list.append(data)
        truths.append(truth)
    torch.save(data_list, path)
    return truths


def random_reference_pickle(path: Path, count: int, *, dim: int = 1024, seed: int = 0, percent: float = 10.0,
                            include_special: bool = True) -> list[Truth]:
    """``count`` graphs: the special layouts first (when asked), then random reference graphs."""
    writer = Stage2Writer(dim=dim, seed=seed)
    specs = special_specs(writer.side)[:count] if include_special else []
    specs += [writer.random_spec(percent) for _ in range(count - len(specs))]
    return write_reference_pickle(path, specs, dim=dim, seed=seed)
