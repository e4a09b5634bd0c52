"""The reference MPNN of NEURAL, trained and evaluated from collection files.

Modules, one concept each: :mod:`.gcn` (FusedGCN) and :mod:`.hetero` (HeteroFusedGNN) are the
models; :mod:`.graph_input` turns records into their inputs; :mod:`.views` gives the
fused/image/text/no-bridge views; :mod:`.splits`, :mod:`.metrics`, :mod:`.train` and
:mod:`.checkpoint` are the split rule, metrics, training loop and safetensors persistence;
:mod:`.ablation` and :mod:`.report_generation` are the paper's experiments; :mod:`.plots` draws
the figures. Importing this package imports neither torch nor torch_geometric.
"""
