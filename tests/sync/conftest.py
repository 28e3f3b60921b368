"""Fixtures of the sync tests: a profile with known credentials and the SyncML endpoint."""

from __future__ import annotations

import pytest

from portal.context import Actor

ACTOR = Actor.command("tests")


@pytest.fixture(autouse=True)
def _syncml_urls(settings) -> None:
    # The endpoint sits at the site root once portal/urls.py includes sync.endpoint_urls;
    # until then the tests mount it themselves.
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("syncml")
    except NoReverseMatch:
        settings.ROOT_URLCONF = "tests.sync.urls"


@pytest.fixture
def sync_template(db):
    from sync import services

    return services.create_template(
        actor=ACTOR, name="default", server_url="http://testserver/syncml"
    )


@pytest.fixture
def profile_and_secret(subscriber, sync_template):
    from sync import services

    return services.create_profile(actor=ACTOR, subscriber=subscriber, username="alice")


@pytest.fixture
def profile(profile_and_secret):
    return profile_and_secret[0]


@pytest.fixture
def secret(profile_and_secret):
    return profile_and_secret[1]
