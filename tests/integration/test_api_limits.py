"""Limits through the API: staff manage rules at ``/admin/limits/`` (strict bodies, nothing
stored on a 400), and a job carries a validated ``concurrency_key`` (``POST /jobs/``, batch
items, shown with the job)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from jobs.models import Job, Limit

pytestmark = pytest.mark.django_db


def test_staff_create_list_update_and_delete_a_rule(staff_api: APIClient) -> None:
    created = staff_api.post(
        "/admin/limits/", {"key": "tenant:*", "max_concurrency": 3}, format="json"
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert (rule["key"], rule["max_concurrency"], rule["rate"]) == ("tenant:*", 3, None)
    assert rule["in_use"] == {}

    listed = staff_api.get("/admin/limits/").json()
    assert [r["key"] for r in listed] == ["tenant:*"]

    patched = staff_api.patch(f"/admin/limits/{rule['id']}", {"rate": "600/m"}, format="json")
    assert patched.status_code == 200, patched.content
    assert (patched.json()["max_concurrency"], patched.json()["rate"]) == (3, "600/m")
    cleared = staff_api.patch(
        f"/admin/limits/{rule['id']}", {"max_concurrency": None}, format="json"
    )
    assert cleared.json()["max_concurrency"] is None

    assert staff_api.delete(f"/admin/limits/{rule['id']}").status_code == 204
    assert not Limit.objects.exists()
    assert staff_api.get(f"/admin/limits/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "tenant:*"}, "max_concurrency"),
        ({"key": "tenant:*", "rate": "10/d"}, "rate"),
        ({"key": "tenant:*", "rate": "0/s"}, "rate"),
        ({"key": "ten ant", "max_concurrency": 1}, "key"),
        ({"key": "a*b", "max_concurrency": 1}, "key"),
        ({"key": "type:", "max_concurrency": 1}, "key"),
        ({"key": "x", "max_concurrency": 0}, "max_concurrency"),
        ({"key": "x", "max_concurrency": "2"}, "max_concurrency"),
        ({"key": "x", "max_concurrency": 2, "burst": 5}, "burst"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field_and_stores_nothing(
    staff_api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = staff_api.post("/admin/limits/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not Limit.objects.exists()


def test_a_second_rule_for_a_key_is_refused(staff_api: APIClient) -> None:
    Limit.objects.create(key="type:noop", rate="10/s")
    response = staff_api.post("/admin/limits/", {"key": "type:noop", "rate": "1/s"}, format="json")
    assert response.status_code == 400
    assert Limit.objects.get().rate == "10/s"


@pytest.mark.parametrize("limit_id", ["\u00b2", "x", "9" * 30])
def test_an_id_that_names_no_rule_is_a_404(staff_api: APIClient, limit_id: str) -> None:
    """Not a 500: a superscript digit passes str.isdigit, a long number overflows a bigint."""
    for method in (staff_api.get, staff_api.patch, staff_api.delete):
        response = method(f"/admin/limits/{limit_id}", {}, format="json")
        assert response.status_code == 404, response.content


def test_limits_are_staff_only(api: APIClient) -> None:
    assert api.get("/admin/limits/").status_code == 403
    assert api.post("/admin/limits/", {"key": "x", "rate": "1/s"}, format="json").status_code == 403
    assert not Limit.objects.exists()


def test_the_django_admin_checks_a_rule_as_the_api_does(admin_client: Any) -> None:
    url = reverse("admin:jobs_limit_add")
    bad = admin_client.post(url, {"key": "tenant:*", "max_concurrency": "", "rate": "5/week"})
    assert bad.status_code == 200 and not Limit.objects.exists()
    good = admin_client.post(url, {"key": "tenant:*", "max_concurrency": "2", "rate": ""})
    assert good.status_code == 302
    assert Limit.objects.get().max_concurrency == 2
    assert admin_client.get(reverse("admin:jobs_limit_changelist")).status_code == 200


def test_a_job_carries_its_concurrency_key(api: APIClient) -> None:
    response = api.post("/jobs/", {"type": "noop", "concurrency_key": "tenant:42"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["concurrency_key"] == "tenant:42"
    assert api.get(f"/jobs/{response.json()['id']}").json()["concurrency_key"] == "tenant:42"
    plain = api.post("/jobs/", {"type": "noop"}, format="json").json()
    assert plain["concurrency_key"] is None


@pytest.mark.parametrize("value", ["", "has space", "type:noop", "a*", 42, "x" * 201])
def test_a_bad_concurrency_key_is_a_400_naming_it(api: APIClient, value: Any) -> None:
    response = api.post("/jobs/", {"type": "noop", "concurrency_key": value}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["concurrency_key"]
    assert not Job.objects.exists()


def test_batch_items_carry_their_concurrency_keys(api: APIClient) -> None:
    body = {
        "jobs": [
            {"key": "a", "type": "noop", "concurrency_key": "tenant:1"},
            {"key": "b", "type": "noop", "depends_on": ["a"]},
        ]
    }
    response = api.post("/jobs/batch/", body, format="json")
    assert response.status_code == 201, response.content
    keys = response.json()["keys"]
    assert Job.objects.get(id=keys["a"]).concurrency_key == "tenant:1"
    assert Job.objects.get(id=keys["b"]).concurrency_key == ""
    bad = api.post(
        "/jobs/batch/", {"jobs": [{"type": "noop", "concurrency_key": "type:x"}]}, format="json"
    )
    assert bad.status_code == 400 and "concurrency_key" in str(bad.json())
