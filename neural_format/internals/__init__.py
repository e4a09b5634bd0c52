"""Machinery with no format knowledge: optional third-party imports, progress bars, pre-populated
read buffers, memory-mapped column reads, and the aliases of moved modules."""
