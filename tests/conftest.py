"""Fixtures shared across test modules."""

import pytest


def argon2_at_test_cost():
    """Argon2 at test cost: production cost (64 MiB, 3 passes) makes every fixture's accounts cost
    ~1 s on a busy CI box; the algorithm and code path stay the same (verify cost follows the hash)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture()
def cheap_argon2(monkeypatch):
    """The review app's password hasher at test cost for one test (see :func:`argon2_at_test_cost`)."""
    from review_app import accounts

    monkeypatch.setattr(accounts, "_hasher", argon2_at_test_cost())
    monkeypatch.setattr(accounts, "_DUMMY_HASH", accounts._hasher.hash("unknown-user-dummy"))


@pytest.fixture(scope="module")
def cheap_argon2_module():
    """:func:`cheap_argon2` for module-scoped fixtures (one server shared by a module's tests)."""
    from review_app import accounts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", argon2_at_test_cost())
        patch.setattr(accounts, "_DUMMY_HASH", accounts._hasher.hash("unknown-user-dummy"))
        yield
