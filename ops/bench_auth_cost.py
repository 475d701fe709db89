"""What abusive sign-in traffic costs a gateway: CPU-seconds of the gateway process per request
for reset-password with made-up tokens, login of unknown e-mails and login with wrong passwords,
at the spec's bcrypt cost (12), and how long each answer takes.

Usage: python -m ops.bench_auth_cost [--requests 20] [--tree PATH] [--limits POLICIES]
`--tree` runs the gateway of another checkout (e.g. a worktree of an older commit) against the
same stack, for a before/after figure; `--limits` lifts the rate limits that tree knows (one
address sends everything: this measures cost, not limits). The stack must be up (ops.stack up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

from ops.config import StackConfig
from ops.processes import free_port, service_env
from ops.seed_data import ensure_tenant

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench pass 2026"


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a process and its threads (bcrypt runs in threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _ready(http: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{base}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)  # start-up pacing: nothing to wait on but the port
    raise SystemExit("the gateway did not become ready")


async def _case(http, base: str, pid: int, path: str, bodies: list[dict]) -> dict:
    cpu_before = process_cpu_s(pid)
    walls, statuses = [], set()
    for body in bodies:
        started = time.perf_counter()
        async with http.post(f"{base}{path}", json=body) as r:
            statuses.add(r.status)
            await r.read()
        walls.append(time.perf_counter() - started)
    cpu = process_cpu_s(pid) - cpu_before
    return {
        "cpu_ms_per_request": 1000 * cpu / len(bodies),
        "median_answer_ms": 1000 * statistics.median(walls),
        "statuses": sorted(statuses),
    }


LIFTED = ",".join(
    f"{p}=100000/100000"
    for p in ("login", "register", "login_address", "register_address", "reset_address", "general")
)


async def run(requests: int, tree: Path, limits: str) -> None:
    cfg = StackConfig.from_env()
    slug = f"bench-auth-{secrets.token_hex(4)}"
    conn = await asyncpg.connect(cfg.database_url)
    try:
        await ensure_tenant(conn, slug, "Bench Auth")
    finally:
        await conn.close()
    port = free_port()
    env = service_env(
        cfg.service_env(),
        BR_JWT_SECRET=secrets.token_hex(32),
        BR_GATEWAY_PORT=str(port),
        BR_GATEWAY_PROCESSES="1",
        BR_BCRYPT_COST="12",
        BR_RATE_LIMIT_NAMESPACE=f"rl-{slug}",
        BR_RATE_LIMITS=limits,
        PYTHONPATH=str(tree),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    print(f"[bench-auth] gateway from {tree} on :{port}, bcrypt cost 12, {requests} a case", flush=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", cwd=tree, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _ready(http, base)
            email = f"known-{secrets.token_hex(4)}@bench.test"
            async with http.post(
                f"{base}/api/v1/auth/register", json={"tenant": slug, "email": email, "password": PASSWORD}
            ) as r:
                assert r.status == 201, await r.text()
            cases = {
                "reset-password, made-up token": (
                    "/api/v1/auth/reset-password",
                    [{"token": secrets.token_urlsafe(32), "password": PASSWORD} for _ in range(requests)],
                ),
                "login, unknown e-mail": (
                    "/api/v1/auth/login",
                    [
                        {"tenant": slug, "email": f"nobody-{i}@bench.test", "password": PASSWORD}
                        for i in range(requests)
                    ],
                ),
                "login, wrong password": (
                    "/api/v1/auth/login",
                    [{"tenant": slug, "email": email, "password": f"wrong {i}"} for i in range(requests)],
                ),
            }
            results = {}
            for name, (path, bodies) in cases.items():
                results[name] = await _case(http, base, proc.pid, path, bodies)
                print(f"[bench-auth] {name}: done", flush=True)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    print(f"\n{'case':34} {'CPU ms/request':>15} {'median answer ms':>17}  statuses")
    for name, r in results.items():
        print(f"{name:34} {r['cpu_ms_per_request']:15.1f} {r['median_answer_ms']:17.1f}  {r['statuses']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--tree", type=Path, default=REPO_ROOT, help="the checkout whose gateway runs")
    parser.add_argument("--limits", default=LIFTED, help="BR_RATE_LIMITS for that gateway")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.tree.resolve(), args.limits))


if __name__ == "__main__":
    main()
