"""Herald learns from its own history: patterns found in it, and suggestions made from them.

``patterns`` reads the tenant's messages, receipts, monitors, conversations and approvals (in SQL, so a
million messages stay a query rather than a Python loop) and returns :class:`herald.learning.model.Pattern`\\ s;
``suggestions`` turns them into proposed changes that a human accepts or dismisses, each applied through the
same service and governance as the direct API call. This package sits above producers, admin and agents
because accepting a suggestion calls their services.
"""
