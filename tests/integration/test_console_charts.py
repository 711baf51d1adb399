"""The charts page: what the rollup holds, for operators and viewers only, in two queries
whatever the number of jobs and buckets; a bad range or type is a 400 naming the field."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from jobs.rollups.models import ALL_TYPES, Grain, JobRollup
from jobs.rollups.sweep import floor_to

URL = "/dashboard/charts/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rollup(minutes: int, types: tuple[str, ...] = ("noop",)) -> None:
    start = floor_to(timezone.now(), Grain.MINUTE) - timedelta(minutes=minutes)
    rows = []
    for i in range(minutes):
        bucket = start + timedelta(minutes=i)
        rows.append(
            JobRollup(
                grain=Grain.MINUTE,
                bucket=bucket,
                type=ALL_TYPES,
                completed=3 * len(types),
                failed=len(types),
            )
        )
        rows += [
            JobRollup(
                grain=Grain.MINUTE,
                bucket=bucket,
                type=t,
                completed=3,
                failed=1,
                wait_p50=0.5,
                wait_p95=2.0,
                run_p50=1.0,
                run_p95=i,
            )
            for t in types
        ]
    JobRollup.objects.bulk_create(rows)


def _series(response: Any) -> dict[str, Any]:
    found = re.search(
        r'<script id="chart-data" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert found
    return json.loads(found.group(1))


def test_the_page_charts_the_rollup_of_the_chosen_range_and_type(staff_user):
    _rollup(30, ("noop", "send_email"))
    response = _client(staff_user).get(URL, {"range": "hour", "type": "noop"})
    assert response.status_code == 200
    series = _series(response)
    assert len(series["x"]) == 30
    assert series["completed"] == [3] * 30 and series["failed"] == [1] * 30
    assert series["run_p95"] == list(range(30))
    assert 'data-total="completed">90<' in response.content.decode()
    every = _series(_client(staff_user).get(URL))
    assert every["completed"] == [6] * 30 and every["wait_p50"] == [None] * 30
    assert b"send_email" in response.content


@pytest.mark.parametrize("rows", [1, 300])
def test_the_page_costs_the_same_queries_whatever_the_rollup_holds(
    staff_user, rows, django_assert_num_queries
):
    _rollup(rows, ("noop", "a", "b"))
    client = _client(staff_user)
    client.get(URL)  # the session's first read
    # session + user, its permissions (user's, groups': is it read-only staff?), then the
    # series and the types
    with django_assert_num_queries(6):
        assert client.get(URL, {"range": "day"}).status_code == 200


def test_viewers_see_the_charts_and_ordinary_users_do_not(viewer_user, user):
    assert _client(viewer_user).get(URL).status_code == 200
    assert _client(user).get(URL).status_code == 403
    assert Client().get(URL).status_code == 302  # to the login page


@pytest.mark.parametrize(
    ("params", "field"), [({"range": "year"}, "range"), ({"type": "x" * 65}, "type")]
)
def test_a_bad_range_or_type_is_a_400_naming_the_field(staff_user, params, field):
    response = _client(staff_user).get(URL, params)
    assert response.status_code == 400
    assert field in response.json()
