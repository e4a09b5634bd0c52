"""One collection file, read and written safely: the structural guards, the lazy reader, the
crash-safe writer, block reads, storage settings and record integrity."""
