"""Sharded collections (a manifest over many files) and operations over whole collections:
open/merge/split, verification, re-pruning, resumable builds, synthetic collections."""
