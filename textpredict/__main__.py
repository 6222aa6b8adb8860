"""``python -m textpredict``: the command line, as the ``textpredict`` script runs it."""

from textpredict.cli import main

main(prog_name="textpredict")
