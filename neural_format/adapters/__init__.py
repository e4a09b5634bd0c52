"""Bridges to other libraries, each imported only when called (the core needs no torch).

* :mod:`.pyg`: records <-> ``torch_geometric.data.Data`` / ``HeteroData``;
* :mod:`.networkx`: records -> ``networkx`` graphs;
* :mod:`.pyg_batches`: ``GraphBatchLoader``, collated PyG batches built straight from the columns;
* :mod:`.torch_dataset`: a lazily reading, DataLoader-worker-safe dataset over a collection;
* :mod:`.batch_columns`: the rows of a batch of records gathered by global index, over shards (numpy/h5py only).

Contiguous multi-record column reads are :mod:`neural_format.files.blocks` (``adapters.blocks`` until 0.2).
"""
