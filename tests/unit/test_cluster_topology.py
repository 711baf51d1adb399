"""The pure parts of ``make cluster`` (tests/cluster), checked without root: the hosts' names
and addresses, the generated PgBouncer and HAProxy configurations, the requests the client
sends, and the psycopg guard."""

from __future__ import annotations

import ipaddress
import re

import pytest

from tests.chaos.plan import Planned
from tests.cluster import client, driver, netns, services, topology


def test_every_host_has_its_own_address_in_the_test_range_and_a_short_enough_name():
    addresses = [ipaddress.ip_address(h.address) for h in topology.HOSTS]
    assert len(set(addresses)) == len(addresses) == 9
    assert all(a in ipaddress.ip_network("198.18.0.0/15") for a in addresses)
    assert ipaddress.ip_address(netns.GATEWAY) not in addresses
    for host in topology.HOSTS:
        assert host.netns.startswith(netns.PREFIX)
        assert len(host.netns) <= 15, "a Linux interface name has at most 15 characters"
        assert len(f"{host.netns}-p"[:15]) <= 15
    assert host.wrap(["true"]) == ["ip", "netns", "exec", host.netns, "true"]


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_pgbouncer_listens_on_the_db_host_in_the_pool_mode_asked(tmp_path, mode):
    argv = services.pgbouncer_argv(tmp_path, topology.DB, mode, topology.DATABASE)
    assert argv[:4] == ["ip", "netns", "exec", topology.DB.netns]
    assert "postgres" in argv[argv.index("-u") + 1]
    ini = (tmp_path / "pgbouncer.ini").read_text()
    assert f"pool_mode = {mode}\n" in ini
    assert f"listen_addr = {topology.DB.address}\n" in ini
    assert f"{topology.DATABASE} = host={topology.DB.address} port={services.PG_PORT}" in ini


def test_every_platform_process_reaches_postgresql_only_through_pgbouncer():
    env = topology.host_env({}, lease=4)
    assert env["DATABASE_URL"].endswith(
        f"@{topology.DB.address}:{services.PGBOUNCER_PORT}/{topology.DATABASE}"
    )
    assert env["REDIS_URL"] == env["CELERY_BROKER_URL"]
    assert topology.DB.address in env["REDIS_URL"]


def test_haproxy_sends_the_stream_to_daphne_and_the_rest_to_gunicorn_of_both_api_hosts(tmp_path):
    services.haproxy_argv(tmp_path, topology.LB, topology.APIS)
    cfg = (tmp_path / "haproxy.cfg").read_text()
    assert f"bind {topology.LB.address}:{services.LB_PORT}" in cfg
    assert "use_backend ws if stream" in cfg and "acl stream path_beg /jobs/stream" in cfg
    backends = dict(re.findall(r"^backend (\w+)\n((?:    .*\n)+)", cfg, re.M))
    for name, port in (("ws", services.WS_PORT), ("rest", services.REST_PORT)):
        servers = re.findall(r"server \w+ ([\d.]+):(\d+) check", backends[name])
        assert servers == [(h.address, str(port)) for h in topology.APIS]


def test_each_job_request_carries_an_idempotency_key_and_its_parents():
    planned = Planned(key="j7", kind="flaky", parents=["j5"], priority="high", ms=20, cpu=1, mem=64)
    body = client.job_request(planned, ["p-id"], index=4, run_id="r1")
    assert body["idempotency_key"] == "r1-j7"
    assert body["depends_on"] == ["p-id"]
    assert body["type"] == "fail" and body["payload"]["fail_attempts"] == 1
    assert body["concurrency_key"] == "tenant:1"
    odd = client.job_request(planned, [], index=5, run_id="r1")
    assert odd["type"] == "chaos_flaky" and "concurrency_key" not in odd


def test_the_psycopg_guard_hides_psycopg_3_only_from_a_psycopg2_pinned_environment():
    path = driver.shim_path()
    assert path is None or path == str(driver.SHIM)
    with pytest.raises(ImportError, match="psycopg 3 is hidden"):
        exec((driver.SHIM / "psycopg" / "__init__.py").read_text())  # noqa: S102
