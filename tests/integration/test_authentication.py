"""The API's token cache: it saves a query per request and never caches a failure."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from draconic.authentication import CachedTokenAuthentication

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> Any:
    CachedTokenAuthentication.forget()
    yield
    CachedTokenAuthentication.forget()


def test_a_cached_token_skips_the_lookup_query(
    api: Any, job_factory: Any, settings: Any, django_assert_num_queries: Any
) -> None:
    job_factory()
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 0
    with django_assert_num_queries(4):  # token, count, rows, edges
        assert api.get("/jobs/").status_code == 200
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 60
    assert api.get("/jobs/").status_code == 200  # looks the token up and caches it
    with django_assert_num_queries(3):  # count, rows, edges: no token query
        assert api.get("/jobs/").status_code == 200


def test_the_cache_expires_and_a_deleted_token_stops_working(api: Any, settings: Any) -> None:
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 60
    assert api.get("/jobs/").status_code == 200
    Token.objects.filter(user=api.user).delete()
    assert api.get("/jobs/").status_code == 200  # still cached: the documented trade-off
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 0  # no cache: every request looks the token up
    assert api.get("/jobs/").status_code == 401


def test_a_wrong_token_is_never_cached(anon_api: Any, user: Any, settings: Any) -> None:
    settings.DRACONIC_TOKEN_CACHE_SECONDS = 60
    anon_api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert anon_api.get("/jobs/").status_code == 401
    Token.objects.create(user=user, key="0" * 40)
    assert anon_api.get("/jobs/").status_code == 200
