"""python -m xqg → the CLI."""

from xqg.cli import main

main()
