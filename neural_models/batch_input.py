"""Model input batches built from the collection's columns, for training and scoring from the file.

:class:`HomogeneousBatches` turns the rows of a batch of records
(:class:`~neural_format.adapters.batch_columns.BatchColumns`) into the collated input of
:class:`~neural_models.gcn.FusedGCN`: the batch that PyG's ``DataLoader`` would collate from
:func:`~neural_models.graph_input.to_homogeneous` of each record's view
(:func:`~neural_models.views.view`), built with a few numpy operations per batch and no
per-record graph. Node features, one-hots and kind columns follow the layout of
:mod:`neural_models.graph_input`; edges are made undirected and coalesced over the whole batch at
once (each graph's nodes form one increasing range, so sorting the batch's edges by (row, col)
sorts each graph's edges and keeps the graphs in order). ``tests/test_models_batch_input.py``
checks the result against the per-record path.

:class:`FileExamples` is the examples of a split read from the file: handed to
:func:`~neural_models.train.fit` and :func:`~neural_models.train.predict` in place of a list of
graphs, it is iterated through :class:`~neural_format.adapters.pyg_batches.GraphBatchLoader`.
"""
from __future__ import annotations


import numpy as np

from .graph_input import NodeFeatures
from . import optional_deps


class HomogeneousBatches:
    """``BatchColumns -> Batch`` of the GCN input for ``modality`` (fused|image|text) and ``bridge``.

    ``keep_half=True`` builds ``x`` in float16 when the collection's features are float16 (every
    value, one-hots included, is exact in float16) so that a batch crosses to a GPU at half the
    bytes; :func:`~neural_format.adapters.pyg_batches.to_device` upcasts it there.
    """

    def __init__(self, features: NodeFeatures, label_index: int, modality: str = "fused", bridge: bool = True,
                 keep_half: bool = False):
        from .views import MODALITIES
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
        self.features, self.label_index = features, int(label_index)
        self.modality, self.bridge, self.keep_half = modality, bool(bridge), bool(keep_half)

    def __call__(self, c):
        torch = optional_deps.load("torch", needed_by="batches read from the file")
        coalesce = optional_deps.load("torch_geometric.utils", needed_by="batches read from the file").coalesce

        from neural_format.adapters.batch_columns import expand
        from neural_format.adapters.pyg_batches import new_batch

        f = self.features
        n = len(c)
        image, text = self.modality != "text", self.modality != "image"
        zero = np.zeros(n, np.int64)
        P = c.counts["patches"] if image else zero
        M = c.counts["entities"] if text else zero
        EA = c.counts["patch_edges"] if image else zero
        ER = c.counts["relations"] if text else zero
        bridge = c.records["/records/bridge"]
        has = (bridge[:, 0] >= 0) & (self.modality == "fused") & self.bridge
        N = P + M
        xo = np.zeros(n + 1, np.int64)
        np.cumsum(N, out=xo[1:])
        total, first = int(xo[-1]), xo[:-1]
        width = max(f.patch_dim, f.entity_dim)
        half = self.keep_half and all(c.shards[0].reader.cols[p].dtype == np.float16 for p in
                                      ("/patches/features", "/entities/features") if c.has(p))
        x = np.zeros((total, width + 2), np.float16 if half else np.float32)
        patch_rows, entity_rows = expand(first, P), expand(first + P, M)
        if image and patch_rows.size:
            x[patch_rows, :f.patch_dim] = c.rows("/patches/features")
        x[patch_rows, width] = 1.0
        if text and entity_rows.size:
            T = len(f.entity_types)
            column = 0
            if f.entity_feature_dim:
                if c.has("/entities/features"):
                    x[entity_rows, :f.entity_feature_dim] = c.rows("/entities/features")
                column = f.entity_feature_dim
            types = c.rows("/entities/type").astype(np.int64)
            types = np.where((types >= 0) & (types < T), types, T)
            x[entity_rows, column + types] = 1.0
            assertions = c.rows("/entities/assertion").astype(np.int64)
            assertions = np.where((assertions >= 0) & (assertions < 3), assertions, 3)
            x[entity_rows, column + T + 1 + assertions] = 1.0
        x[entity_rows, width + 1] = 1.0

        parts = []
        if image and EA.any():
            parts.append(c.rows("/patch_edges/index").astype(np.int64) + np.repeat(first, EA)[:, None])
        if text and ER.any():
            parts.append(c.rows("/relations/index").astype(np.int64) + np.repeat(first + P, ER)[:, None])
        if has.any():
            parts.append(np.stack([bridge[has, 0] + first[has], bridge[has, 1] + first[has] + P[has]], 1))
        edges = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        directed = torch.from_numpy(np.ascontiguousarray(edges.T))
        edge_index = coalesce(torch.cat([directed, directed.flip(0)], dim=1), num_nodes=max(total, 1))
        graph_of_edge = np.searchsorted(xo, edge_index[0].numpy(), side="right") - 1
        eo = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(graph_of_edge, minlength=n), out=eo[1:])

        labels = np.asarray(c.records["/records/labels"], np.float32)
        y = torch.from_numpy(labels[:, self.label_index].copy() if labels.shape[1] > self.label_index
                             else np.full(n, np.nan, np.float32))
        xo_t = torch.from_numpy(xo)
        counter, zeros = torch.arange(n + 1), torch.zeros(n, dtype=torch.long)
        fields = {"x": torch.from_numpy(x), "edge_index": edge_index, "y": y, "num_nodes": total,
                  "batch": torch.repeat_interleave(torch.arange(n), torch.from_numpy(N)), "ptr": xo_t}
        slices = {"x": xo_t, "edge_index": torch.from_numpy(eo), "y": counter}
        incs = {"x": zeros, "edge_index": xo_t[:-1].clone(), "y": zeros}
        batch = new_batch(fields, slices, incs, n)
        batch._store.__dict__["_num_nodes"] = N.tolist()  # as PyG keeps each graph's explicit num_nodes
        return batch


class FileExamples:
    """Examples at global ``positions`` of ``sources``, as model input batches read from the file."""

    def __init__(self, columns, positions, assemble: HomogeneousBatches, labels: np.ndarray):
        self.columns, self.positions, self.assemble = columns, np.asarray(positions, np.int64), assemble
        self.labels = np.asarray(labels, np.float64)

    def __len__(self) -> int:
        return int(self.positions.size)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, num_workers: int = 0,
               rank: int = 0, world_size: int = 1):
        from neural_format.adapters.pyg_batches import GraphBatchLoader
        return GraphBatchLoader(None, columns=self.columns, indices=self.positions, batch_size=batch_size,
                                shuffle=shuffle, seed=seed, num_workers=num_workers, rank=rank,
                                world_size=world_size, assemble=self.assemble,
                                persistent_workers=num_workers > 0)

