"""``data-testid`` attributes: the names the browser tests find controls by (keep them stable)."""

from __future__ import annotations


def testid(name: str) -> list[str]:
    """A static ``data-testid`` attribute."""
    return [f'data-testid="{name}"']


def dynamic_testid(prefix: str, key_expression: str) -> list[str]:
    """A ``data-testid`` built in the browser from a list item's key."""
    return [f":data-testid=\"'{prefix}' + {key_expression}\""]
