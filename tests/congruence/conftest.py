"""Marks the Milvus cases of the congruence suite."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "[milvus" in item.nodeid:
            item.add_marker(pytest.mark.milvus)
