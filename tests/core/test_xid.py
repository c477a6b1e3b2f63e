"""Two-phase commit ids behave as PEP 249's 3-item sequences."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

from psycopg3 import Xid


def test_xid_is_a_three_item_sequence_and_pickles() -> None:
    xid = Xid(7, "g", "b", prepared=datetime(2020, 1, 1, tzinfo=timezone.utc), owner="me")
    assert len(xid) == 3 and tuple(xid) == (7, "g", "b")
    assert xid == Xid(7, "g", "b")  # the recovered facts take no part in equality
    copy = pickle.loads(pickle.dumps(xid))
    assert copy == xid and copy.owner == "me" and copy.prepared == xid.prepared
    assert "owner='me'" in repr(xid)
