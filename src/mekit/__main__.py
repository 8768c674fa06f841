"""`python -m mekit` is the `mekit` command."""
from mekit.cli.main import main

main()
