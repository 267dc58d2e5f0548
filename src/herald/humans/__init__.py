"""Humans in the loop: approval requests and agents' questions taken to people where they are, and their
answers brought back.

- :mod:`directory`: approvers (a person and the addresses that reach them) and approval policies (which held
  messages go to whom, the quorum, escalation and expiry).
- :mod:`outreach`: requests and questions created and sent, each copy a governed Herald message with buttons
  where the platform has them; escalation and expiry.
- :mod:`decisions`: a decision or an answer, from a button, a text reply, a signed email link or the API,
  checked against who may give it, counted towards the quorum, and settled everywhere; the asking agent told.
- :mod:`links`: the signed single-use links that email approvers decide with.
"""
