"""Bridges to other libraries, each imported only when called (the core needs no torch).

* :mod:`.pyg`: records <-> ``torch_geometric.data.Data`` / ``HeteroData``;
* :mod:`.networkx`: records -> ``networkx`` graphs;
* :mod:`.torch_dataset`: a lazily reading, DataLoader-worker-safe dataset over a collection file;
* :mod:`.blocks`: contiguous multi-record column reads (numpy/h5py only).
"""
