"""What a collection file holds, independent of reading or writing one: the column table
(``layout``), ``Record`` and its columns, the metadata models and their JSON Schemas, the canonical
hashes."""
