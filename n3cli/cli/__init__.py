"""The `n3` command line: thin commands over :mod:`n3cli.api`."""
