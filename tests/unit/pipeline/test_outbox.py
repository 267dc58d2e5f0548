"""The claim returns its columns in the order of :class:`Claimed`'s fields, which it is built from by position."""

from __future__ import annotations

import dataclasses
import re

from herald.pipeline.outbox import Claimed
from herald.storage import sql


def test_the_claim_returns_the_columns_in_the_order_of_claimeds_fields() -> None:
    for dialect in ("postgresql", "sqlite"):
        statement = str(sql.OUTBOX_CLAIM.statement(dialect))
        returning = re.search(r"RETURNING\s+(.*)$", statement, re.S)
        assert returning is not None
        columns = [name.strip() for name in returning.group(1).split(",")]
        assert columns == [field.name for field in dataclasses.fields(Claimed)]
