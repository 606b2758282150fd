"""Typer command-line interface. Thin: resolve config, call a stage, print. TensorFlow is
imported only inside the commands that need it, so `--help` stays fast."""
