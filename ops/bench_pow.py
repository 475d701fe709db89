"""What the waiting room's proof of work costs a browser, and the gateway.

Usage: python -m ops.bench_pow [--trials 5] [--bits 8,12,16,18,20]

The browser: headless Chromium (Debian's, as the browser tests use) runs the page's own worker
(gateway/static/pow-worker.js) on fresh challenges, with the CPU as it is (x1), throttled four
times by Chrome's emulation of a slow phone (x4 emulated), and throttled four times for real:
every Chromium process given a quarter of one CPU by a CFS quota in a cgroup of its own (x4
quota; needs a writable cpu cgroup, v1 or v2, e.g. root; skipped otherwise). Each trial's hashes
are its nonce + 1, so the trials measure the worker's hash rate; the time to solve a difficulty
is geometric, so its mean is 2^bits / rate and its p95 three times that. Solves at 12 bits are
also timed as they come (median), as a check on the model. Chromium's throttling emulation slows
the page's main thread but, measured, not the worker's hashing (crypto.subtle runs on the
browser's own threads): the quota is what a phone four times slower would see.

The gateway: CPU per checked proof (waiting_room.pow.check_proof: an HMAC and a hash), in this
process. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from ops import stack
from ops.chromium import chromium
from ops.config import REPO_ROOT
from waiting_room.pow import check_proof, issue_challenge, solve

STATIC = REPO_ROOT / "gateway" / "static"
PAGE = b"""<!doctype html><meta charset="utf-8"><title>pow bench</title>"""
# Runs the page's worker once: resolves to [hashes tried, milliseconds].
RUN_ONCE = """
const [challenge, bits, done] = arguments;
const started = performance.now();
const worker = new Worker("/static/pow-worker.js");
worker.onmessage = ({ data }) => {
  worker.terminate();
  done([Number(data.nonce) + 1, performance.now() - started]);
};
worker.postMessage({ challenge, bits });
"""


def say(msg: str) -> None:
    print(f"[bench-pow] {msg}", flush=True)


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, directory=str(STATIC), **kwargs)

    def translate_path(self, path: str) -> str:
        return super().translate_path(path.removeprefix("/static"))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


def browser_trials(driver, bits: int, trials: int) -> list[tuple[int, float]]:
    driver.set_script_timeout(600)
    return [
        tuple(driver.execute_async_script(RUN_ONCE, secrets.token_urlsafe(48), bits)) for _ in range(trials)
    ]


def _arm(driver, name: str, trials: int, bits_list: list[int]) -> dict:
    runs = browser_trials(driver, 16, trials)
    rate = sum(h for h, _ in runs) / (sum(ms for _, ms in runs) / 1000)
    at_12 = statistics.median(ms for _, ms in browser_trials(driver, 12, trials))
    say(f"{name}: {rate:,.0f} hashes/s; 12 bits solved in {at_12:.0f} ms (median of {trials})")
    return {
        "hashes_per_s": round(rate),
        "median_ms_at_12_bits": round(at_12),
        "by_bits": {
            str(bits): {"mean_s": round(2**bits / rate, 3), "p95_s": round(math.log(20) * 2**bits / rate, 3)}
            for bits in bits_list
        },
    }


def _cpu_cgroup() -> tuple[Path, str] | None:
    """The cpu controller's root and its version ("v1", "v2"), if this process may make a group."""
    for root, version, knob in (
        (Path("/sys/fs/cgroup/cpu"), "v1", "cpu.cfs_quota_us"),
        (Path("/sys/fs/cgroup"), "v2", "cgroup.subtree_control"),
    ):
        if (root / knob).exists() and os.access(root, os.W_OK):
            if version == "v2" and "cpu" not in (root / "cgroup.controllers").read_text().split():
                continue
            return root, version
    return None


@contextlib.contextmanager
def cpu_quota(pids: list[int], share_of_one_cpu: float) -> Iterator[bool]:
    """Every process in `pids` (and whatever they start) limited to `share_of_one_cpu` of one CPU
    together, by a CFS quota; yields False (nothing limited) where no cpu cgroup can be made."""
    found = _cpu_cgroup()
    if found is None:
        yield False
        return
    root, version = found
    group = root / f"bench-pow-{os.getpid()}"
    group.mkdir()
    period = 100_000
    if version == "v1":
        (group / "cpu.cfs_period_us").write_text(str(period))
        (group / "cpu.cfs_quota_us").write_text(str(int(period * share_of_one_cpu)))
    else:
        (group / "cpu.max").write_text(f"{int(period * share_of_one_cpu)} {period}")
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, OSError):  # one that ended meanwhile
                (group / "cgroup.procs").write_text(str(pid))
        yield True
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (root / "cgroup.procs").write_text(pid)
        group.rmdir()


def chromium_pids(driver) -> list[int]:
    """Chromium's processes: chromedriver's descendants (the browser, its renderers, helpers)."""
    driver_process = psutil.Process(driver.service.process.pid)
    return [p.pid for p in driver_process.children(recursive=True)]


def measure_browser(base: str, trials: int, bits_list: list[int]) -> dict:
    out = {}
    with chromium() as driver:
        driver.get(base + "/")
        out["x1"] = _arm(driver, "x1", trials, bits_list)
        driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 4})
        out["x4_emulated"] = _arm(driver, "x4 emulated", trials, bits_list)
        driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 1})
        with cpu_quota(chromium_pids(driver), 0.25) as limited:
            if limited:
                out["x4_quota"] = _arm(driver, "x4 quota (a quarter of one CPU)", trials, bits_list)
            else:
                say("x4 quota: skipped (no writable cpu cgroup here)")
    return out


def measure_gateway(count: int = 20_000) -> dict:
    secret, user, event, bits = secrets.token_hex(32), "u" * 36, "e" * 36, 8
    now = int(time.time() * 1000)
    challenge = issue_challenge(secret, user, event, bits, now)
    proof = {"challenge": challenge, "nonce": solve(challenge, bits)}
    started = time.process_time()
    for _ in range(count):
        check_proof(secret, proof, user, event, now)
    return {"us_per_check": round(1e6 * (time.process_time() - started) / count, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--bits", type=lambda s: [int(b) for b in s.split(",")], default=[8, 12, 16, 18, 20])
    args = parser.parse_args(argv)
    stack.ensure_packages(stack.TEST_PACKAGES)  # Debian's chromium and chromedriver
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # 127.0.0.1: a secure context
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser = measure_browser(f"http://127.0.0.1:{server.server_port}", args.trials, args.bits)
    finally:
        server.shutdown()
    gateway = measure_gateway()
    say(f"gateway: {gateway['us_per_check']} µs of CPU per proof checked")
    print()
    arms = [name for name in ("x1", "x4_emulated", "x4_quota") if name in browser]
    print("  bits   hashes" + "".join(f"   {name + ' mean / p95':>26}" for name in arms))
    for bits in args.bits:
        cells = [browser[name]["by_bits"][str(bits)] for name in arms]
        print(
            f"  {bits:>4} {2**bits:>9,}"
            + "".join(f"   {c['mean_s']:>15.2f} / {c['p95_s']:>6.2f} s" for c in cells)
        )
    print(json.dumps({"browser": browser, "gateway": gateway}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
