"""``python -m sim`` runs the ``surplus`` command line."""

from sim.cli import main

main()
