"""Fixtures shared across test modules."""

import pytest


@pytest.fixture()
def cheap_argon2(monkeypatch):
    """Argon2 at test cost: production cost (64 MiB, 3 passes) makes every fixture's accounts cost
    ~1 s on a busy CI box; the algorithm and code path stay the same."""
    from argon2 import PasswordHasher

    from review_app import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
