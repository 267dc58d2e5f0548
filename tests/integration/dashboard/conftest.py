"""The dashboard's second browser (its own cookie jar), shared with tests/integration/test_dashboard.py."""

from tests.integration.test_dashboard import browser_b

__all__ = ["browser_b"]
