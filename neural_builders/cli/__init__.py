"""Builder subcommands of ``neural-format`` (modules named ``*_cmd``, discovered automatically)."""
