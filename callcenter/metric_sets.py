"""Metric sets made once per Prometheus registry.

A registry refuses a metric name twice, while several parts of one process count into the
same set (each adapter's pipeline, each streams client): they share it by `of(registry)`.
"""

from __future__ import annotations

from typing import Any, Self
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry

_made: WeakKeyDictionary[CollectorRegistry, dict[type[Any], Any]] = WeakKeyDictionary()


class PerRegistry:
    """A set of metrics; subclasses make theirs in `__init__(registry)`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        del registry

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Self:
        """This registry's set, made on first use."""
        made = _made.setdefault(registry, {})
        found = made.get(cls)
        if found is None:
            found = made[cls] = cls(registry)
        return found
