"""``python -m simulator.cli`` is ``contactsim``."""

from simulator.cli.app import main

main()
