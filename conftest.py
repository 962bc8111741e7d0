"""Fixtures for the whole suite (src/posfleet/*/tests and tests/)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop beside the sync ORM


@pytest.fixture
def world(db):
    from posfleet.testing.personas import build_world

    return build_world()


@pytest.fixture
def actor_of():
    """actor_of(user, stepped_up=True) -> an Actor as the console or API would build it."""
    from posfleet.platform.clock import now
    from posfleet.platform.context import Actor

    def make(user, *, stepped_up: bool = False):
        return Actor.for_user(
            user, request_id="test", source_ip="127.0.0.1", stepped_up_at=now() if stepped_up else None
        )

    return make


@pytest.fixture(scope="session")
def production_static(tmp_path_factory):
    """STATIC_ROOT as a deployment's `posfleet collectstatic` leaves it (hashed names, manifest, .br and
    .gz copies), collected once per run; use it under ``production_static_settings`` (testing/static.py)."""
    from posfleet.testing.static import collect_production_static

    return collect_production_static(tmp_path_factory.mktemp("static"))
