"""``chunks``: the lists every bounded IN list and multi-row statement is built from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rhythm_shared.kit.db import IN_LIST, chunks


@given(st.lists(st.integers(), max_size=2_000), st.integers(min_value=1, max_value=700))
def test_chunks_keep_every_item_in_order_in_lists_of_the_size(items: list[int], size: int) -> None:
    parts = list(chunks(iter(items), size))
    assert [x for part in parts for x in part] == items
    assert all(len(part) == size for part in parts[:-1])
    assert all(0 < len(part) <= size for part in parts)


def test_the_default_size_is_the_in_list_bound() -> None:
    assert [len(p) for p in chunks(range(IN_LIST * 2 + 1))] == [IN_LIST, IN_LIST, 1]
