"""Sub-commands of ``contactsim`` beyond ``run``; each module registers itself on the app.

Import order is the order of ``contactsim --help``.
"""

import simulator.commands.check as check  # noqa: F401  (contactsim check)
import simulator.commands.compare as compare  # noqa: F401  (contactsim compare)
import simulator.commands.report as report  # noqa: F401  (contactsim report)
import simulator.commands.strategies as strategies  # noqa: F401  (contactsim strategies)
import simulator.commands.sweep as sweep  # noqa: F401  (contactsim sweep)
