"""``neural-format`` subcommands of the reference models: train, evaluate, ablate, generate-reports."""
