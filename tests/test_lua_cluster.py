"""The sale scripts run unchanged on a real 3-node Redis Cluster: no CROSSSLOT, same answers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid

import orjson
import pytest
import pytest_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from lua import keys, load_scripts
from ops.stack import wait_for
from tests.support import start_redis, stop_redis

PORTS = (17101, 17102, 17103)


def _cluster_ok(port: int) -> bool:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True
    ).stdout
    return "cluster_state:ok" in out


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory, stack_cfg):
    assert shutil.which("redis-server"), "the stack installs redis-server"
    base = tmp_path_factory.mktemp("cluster")
    for port in PORTS:
        stop_redis(port, "nosave")  # a node left over from an interrupted run
        d = base / str(port)
        d.mkdir()
        start_redis(port, d, "--cluster-enabled", "yes", "--cluster-config-file", str(d / "nodes.conf"))
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *[f"127.0.0.1:{p}" for p in PORTS],
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
    )
    # Each node flips to cluster_state:ok on its own timer after the slots are assigned, and no
    # command blocks until it does: a bounded check of that state is all Redis offers.
    wait_for(lambda: all(_cluster_ok(p) for p in PORTS), "cluster_state:ok on every node", 30, None)
    yield PORTS
    for port in PORTS:
        stop_redis(port, "nosave")


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(cluster_nodes):
    client = RedisCluster(host="127.0.0.1", port=cluster_nodes[0])
    await client.initialize()
    yield client
    await client.aclose()


async def test_scripts_run_on_every_node_without_crossslot(cluster):
    scripts = await load_scripts(cluster)
    nodes = set()
    tried = 0
    while nodes != set(PORTS):  # new events until every node has served one
        tried += 1
        assert tried <= 200, f"200 random events never reached every node: {nodes}"
        event = str(uuid.uuid4())
        show, zone, user = (str(uuid.uuid4()) for _ in range(3))
        booking = messages.new_public_id(event)
        request = messages.new_public_id(event)
        ks = keys.reserve_keys(event, user, f"r:{request}", show, zone, booking)
        assert len({key_slot(k.encode()) for k in ks}) == 1  # one hash tag, one slot
        nodes.add(cluster.get_node_from_key(ks[1]).port)
        await cluster.hset(ks[1], mapping={"available": 5, "total": 5, "price_cents": 100})
        now = now_ms()
        out = await scripts.reserve_seats(
            keys=ks, args=["h", now, now + 30_000, 2, booking, user, show, zone, 1000, 60, request, 4]
        )
        result = orjson.loads(out[0])
        assert result["status"] == "reserved" and result["remaining"] == 3
        code, _ = await scripts.expire_hold(
            keys=keys.hold_keys(event, booking, user, show, zone),
            args=[booking, result["expires_at"], user, show, zone],
        )
        assert code == 1
        assert int(await cluster.hget(ks[1], "available")) == 5


async def test_concurrent_scripts_across_slots(cluster):
    """Many events' scripts in flight at once, each routed to its own slot's node."""
    scripts = await load_scripts(cluster)
    calls = []
    for _ in range(9):
        event, show, zone, user = (str(uuid.uuid4()) for _ in range(4))
        booking, request = messages.new_public_id(event), messages.new_public_id(event)
        ks = keys.reserve_keys(event, user, f"r:{request}", show, zone, booking)
        await cluster.hset(ks[1], mapping={"available": 1, "total": 1, "price_cents": 100})
        now = now_ms()
        calls.append((ks, ["h", now, now + 30_000, 1, booking, user, show, zone, 1000, 60, request, 4]))
    results = await asyncio.gather(*(scripts.reserve_seats(keys=k, args=a) for k, a in calls))
    assert [orjson.loads(r[0])["status"] for r in results] == ["reserved"] * 9
