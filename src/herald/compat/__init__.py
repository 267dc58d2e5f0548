"""Drop-in replacements for the clients Herald's seeds were written against, built on :mod:`herald.client`.

:mod:`herald.compat.otp` is seed 003's ``otp_messaging_agent``: change the import and the same code sends through
a Herald server.
"""
