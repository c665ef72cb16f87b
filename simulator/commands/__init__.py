"""Sub-commands of ``contactsim`` beyond ``run``; each module registers itself on the app.

Import order is the order of ``contactsim --help``.
"""

import simulator.commands.check as check  # noqa: F401  (contactsim check)
import simulator.commands.report as report  # noqa: F401  (contactsim report)
