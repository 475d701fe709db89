"""Proof of work at join: a room that asks it lets a new place in line only with a solved,
genuine, current challenge of the joiner's own, each challenge taking one place once; checking it
is one HMAC and one hash. A room that does not ask it (the default) is joined as before."""

from __future__ import annotations

import hashlib

from booking_rush.contract.messages import now_ms
from tests.support import call, queue_call
from waiting_room.pow import check_proof, issue_challenge, leading_zero_bits, solve

SECRET = "pow-test-secret-" * 3
EVENT, ALICE, BOB = (
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-00000000000a",
    "00000000-0000-4000-8000-00000000000b",
)


def test_leading_zero_bits():
    assert leading_zero_bits(bytes([0, 0, 0x10, 0xFF])) == 19
    assert leading_zero_bits(bytes([0x80])) == 0
    assert leading_zero_bits(bytes(4)) == 32


def test_a_proof_is_worth_its_zero_bits_only_for_its_user_room_and_time():
    now = now_ms()
    challenge = issue_challenge(SECRET, ALICE, EVENT, 10, now)
    proof = {"challenge": challenge, "nonce": solve(challenge, 10)}
    assert check_proof(SECRET, proof, ALICE, EVENT, now).bits >= 10
    assert check_proof(SECRET, proof, BOB, EVENT, now).bits == 0  # another user's
    other_event = "00000000-0000-4000-8000-000000000002"
    assert check_proof(SECRET, proof, ALICE, other_event, now).bits == 0
    assert check_proof(SECRET, proof, ALICE, EVENT, now + 121_000).bits == 0  # expired
    assert check_proof("another-secret-" * 3, proof, ALICE, EVENT, now).bits == 0  # not ours
    forged = {**proof, "challenge": challenge.replace(".10.", ".1.", 1)}
    assert check_proof(SECRET, forged, ALICE, EVENT, now).bits == 0  # tampered
    for junk in (None, "x", {"challenge": 1, "nonce": "1"}, {"challenge": challenge, "nonce": "9" * 65}):
        assert check_proof(SECRET, junk, ALICE, EVENT, now).bits == 0


async def _join(http, url, token, event_id, pow_field=None) -> tuple[int, dict]:
    body = {"event_id": event_id, **({"pow": pow_field} if pow_field else {})}
    return await call(http, "POST", f"{url}/api/v1/queue/join", token, body)


async def test_a_room_that_asks_proof_of_work_takes_a_solved_challenge_once(
    gateway_url, http, make_event, make_users, token_for, room
):
    event = await make_event([("GA", 100)], shows=1)
    await room.configure(event.event_id, {"mode": "always", "pow_bits": 8})
    alice, bob = await make_users(2)

    status, refused = await _join(http, gateway_url, token_for(alice), event.event_id)
    assert status == 403 and refused["error"]["code"] == "PROOF_OF_WORK_REQUIRED"
    challenge, bits = refused["error"]["details"]["challenge"], refused["error"]["details"]["bits"]
    assert bits == 8
    proof = {"challenge": challenge, "nonce": solve(challenge, bits)}

    assert (await _join(http, gateway_url, token_for(bob), event.event_id, proof))[0] == 403  # alice's
    unsolved = next(str(n) for n in range(1000) if _zero_bits(challenge, str(n)) < bits)
    wrong = {"challenge": challenge, "nonce": unsolved}
    assert (await _join(http, gateway_url, token_for(alice), event.event_id, wrong))[0] == 403

    status, joined = await _join(http, gateway_url, token_for(alice), event.event_id, proof)
    assert status == 200 and joined["data"]["state"] == "waiting"
    status, again = await _join(http, gateway_url, token_for(alice), event.event_id)
    assert status == 200 and again["data"]["position"] == 1  # in line already: keeps the place
    assert (await queue_call(http, gateway_url, token_for(alice), "status", event.event_id))[0] == 200

    await queue_call(http, gateway_url, token_for(alice), "leave", event.event_id)
    status, reused = await _join(http, gateway_url, token_for(alice), event.event_id, proof)
    assert status == 403 and reused["error"]["code"] == "PROOF_OF_WORK_REQUIRED"  # used once already


def _zero_bits(challenge: str, nonce: str) -> int:
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest())


async def test_an_operator_sets_the_difficulty_within_bounds(gateway_url, http, make_event, token_with_role):
    event = await make_event([("GA", 100)], shows=1)
    token = await token_with_role("admin")
    url = f"{gateway_url}/api/v1/admin/events/{event.event_id}/room"
    status, body = await call(http, "PUT", url, token, {"mode": "always", "pow_bits": 12})
    assert status == 200 and body["data"]["config"]["pow_bits"] == 12
    status, body = await call(http, "PUT", url, token, {"pow_bits": 25})
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR"
