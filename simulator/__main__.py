"""``python -m simulator`` is ``contactsim``."""

from simulator.cli import main

main()
