"""Sub-commands of ``contactsim`` beyond ``run``; each module registers itself on the app.

Import order is the order of ``contactsim --help``.
"""
