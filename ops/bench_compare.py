"""bench_compare: did a change move the reservation path's cost? ops.bench (or the demo's rush) at
a base commit, at that commit again, and at the code under test, taking turns in one run.

Usage: python -m ops.bench_compare --base COMMIT [--new COMMIT] [--rounds 3] [--duration 10] [--demo]

Each arm runs `python -m ops.bench` (with --demo: `python -m ops.demo`, compared on its rush's
throughput and p99) from its own checkout: the base twice (two arms, two
worktrees under .state/bench-worktrees/), so the run measures how far the same code drifts
against itself on this shared, noisy machine; the new arm is this checkout, as it is, unless
--new names a commit. Every round runs each arm once, the order rotating from round to round.
Printed: every run's (b)/(a) and (c); per arm their medians; the band the base spans against
itself (the lowest and highest of every base run); whether the new arm's medians fall inside it;
and last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from ops.config import REPO_ROOT, StackConfig

# What each comparison runs and the figures it compares, read from the run's closing JSON object.
BENCH_METRICS = {
    "ratio_b_over_a": lambda r: r["ratio_b_over_a"],
    "c_worker_per_cpu_s": lambda r: r["c_worker_per_cpu_s"],
}
DEMO_METRICS = {
    "rush_rps": lambda r: r["throughput_rps"],
    "rush_p99_ms": lambda r: r["latency_ms"]["p99"],
}


def say(msg: str) -> None:
    print(f"[compare] {msg}", flush=True)


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def worktree(commit: str, name: str, root: Path) -> Path:
    """A detached checkout of `commit` at root/name (made afresh: nothing left from a run before)."""
    path = root / name
    if path.exists():
        git("worktree", "remove", "--force", str(path))
    git("worktree", "prune")
    git("worktree", "add", "--detach", "--force", str(path), commit)
    return path


def bench_once(arm: str, checkout: Path, command: list[str], metrics: dict, env: dict[str, str]) -> dict:
    """One `python -m <command>` in `checkout`; the figures of its closing JSON object."""
    say(f"{arm}: python -m {' '.join(command)} (in {checkout})")
    proc = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith(("[bench]", "[demo]")):
            print(f"    {arm}: {line}", flush=True)
        if line.startswith("{"):
            last = line
    if proc.wait() != 0 or not last:
        raise RuntimeError(f"{command[0]} failed in {checkout} (exit {proc.returncode})")
    result = {m: read(json.loads(last)) for m, read in metrics.items()}
    say(f"{arm}: " + ", ".join(f"{m} {v}" for m, v in result.items()))
    return result


def summary(runs: dict[str, list[dict]], base_arms: list[str], new_arm: str) -> dict:
    """Medians per arm and metric; the base's band (every base run); the new arm's place in it."""
    metrics = list(next(iter(runs.values()))[0])
    out: dict = {"runs": runs}
    out["medians"] = {
        arm: {m: round(statistics.median(r[m] for r in rs), 3) for m in metrics} for arm, rs in runs.items()
    }
    verdict = {}
    for m in metrics:
        base_values = [r[m] for arm in base_arms for r in runs[arm]]
        low, high = min(base_values), max(base_values)
        new = out["medians"][new_arm][m]
        base_medians = [out["medians"][arm][m] for arm in base_arms]
        verdict[m] = {
            "base_band": [low, high],
            "base_against_itself": round(max(base_medians) / min(base_medians) - 1, 3),
            "new_median": new,
            "new_over_base": round(new / statistics.median(base_values), 3),
            "within_band": low <= new <= high,
        }
    out["verdict"] = verdict
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--new", help="the commit under test (default: this checkout, as it is)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each load in ops.bench")
    parser.add_argument(
        "--demo", action="store_true", help="compare the demo's rush (python -m ops.demo) instead"
    )
    args = parser.parse_args(argv)
    if args.demo:
        command, metrics = ["ops.demo"], DEMO_METRICS
    else:
        command, metrics = ["ops.bench", "--duration", str(args.duration)], BENCH_METRICS

    cfg = StackConfig.from_env()
    root = cfg.state_dir / "bench-worktrees"
    root.mkdir(parents=True, exist_ok=True)
    base = git("rev-parse", "--short", args.base)
    checkouts = {
        f"base {base}": worktree(base, f"{base}-a", root),
        f"base {base} again": worktree(base, f"{base}-b", root),
    }
    new_arm = f"new {git('rev-parse', '--short', args.new)}" if args.new else "new (this checkout)"
    checkouts[new_arm] = worktree(args.new, f"{args.new}-new", root) if args.new else REPO_ROOT
    # Every arm uses the services already running for this checkout (its state folder).
    env = {**os.environ, "BR_STATE_DIR": str(cfg.state_dir)}
    arms = list(checkouts)
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    for round_no in range(args.rounds):
        order = arms[round_no % len(arms) :] + arms[: round_no % len(arms)]
        say(f"round {round_no + 1} of {args.rounds}: {', '.join(order)}")
        for arm in order:
            runs[arm].append(bench_once(arm, checkouts[arm], command, metrics, env))

    result = summary(runs, arms[:2], new_arm)
    print()
    names = " / ".join(metrics)
    for arm in arms:
        values = "  ".join("/".join(f"{r[m]:g}" for m in metrics) for r in runs[arm])
        medians = " / ".join(f"{result['medians'][arm][m]:g}" for m in metrics)
        print(f"  {arm:<28} {names} per run: {values}   medians {medians}")
    for m, v in result["verdict"].items():
        print(
            f"  {m:<20} base band {v['base_band'][0]}..{v['base_band'][1]} (base against itself "
            f"{v['base_against_itself']:+.1%}); new median {v['new_median']:g} = "
            f"{v['new_over_base']:.3f} x base: {'within' if v['within_band'] else 'OUTSIDE'} the band"
        )
    print(json.dumps({"base": base, "new": new_arm, "rounds": args.rounds, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
