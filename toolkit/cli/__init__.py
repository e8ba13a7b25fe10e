"""The `ferminet` command line (see toolkit.cli.main)."""
