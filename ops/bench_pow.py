"""What the waiting room's proof of work costs a browser, and the gateway.

Usage: python -m ops.bench_pow [--trials 5] [--bits 8,12,16,18,20]

The browser: headless Chromium (Debian's, as the browser tests use) runs the page's own worker
(gateway/static/pow-worker.js) on fresh challenges, with the CPU as it is (x1) and throttled
four times (x4, Chrome's emulation of a slow phone). Each trial's hashes are its nonce + 1, so
the trials measure the worker's hash rate; the time to solve a difficulty is geometric, so its
mean is 2^bits / rate and its p95 three times that. Solves at 12 bits are also timed as they
come (median), as a check on the model. Chromium's throttling emulation slows the page's main
thread, and on this machine measurably not the worker's hashing (crypto.subtle runs on the
browser's own threads): the table also gives x1's figures times four, for a phone four times
slower than this machine.

The gateway: CPU per checked proof (waiting_room.pow.check_proof: an HMAC and a hash), in this
process. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

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


def measure_browser(base: str, trials: int, bits_list: list[int]) -> dict:
    out = {}
    with chromium() as driver:
        driver.get(base + "/")
        for throttle in (1, 4):
            driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": throttle})
            runs = browser_trials(driver, 16, trials)
            rate = sum(h for h, _ in runs) / (sum(ms for _, ms in runs) / 1000)
            at_12 = statistics.median(ms for _, ms in browser_trials(driver, 12, trials))
            say(f"x{throttle}: {rate:,.0f} hashes/s; 12 bits solved in {at_12:.0f} ms (median of {trials})")
            out[f"x{throttle}"] = {
                "hashes_per_s": round(rate),
                "median_ms_at_12_bits": round(at_12),
                "by_bits": {
                    str(bits): {
                        "mean_s": round(2**bits / rate, 3),
                        "p95_s": round(math.log(20) * 2**bits / rate, 3),
                    }
                    for bits in bits_list
                },
            }
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
    print("  bits   hashes      x1 mean / p95    x4 emulated mean / p95   x1 times 4 mean / p95")
    for bits in args.bits:
        one, four = browser["x1"]["by_bits"][str(bits)], browser["x4"]["by_bits"][str(bits)]
        print(
            f"  {bits:>4} {2**bits:>9,}   {one['mean_s']:>6.2f} / {one['p95_s']:>6.2f} s"
            f"   {four['mean_s']:>9.2f} / {four['p95_s']:>6.2f} s"
            f"   {4 * one['mean_s']:>12.2f} / {4 * one['p95_s']:>6.2f} s"
        )
    print(json.dumps({"browser": browser, "gateway": gateway}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
