"""Make a queue-pass signing key and a Web Push (VAPID) key: prints the environment lines the
gateways (and, for the VAPID key, the admitter) need.

Usage: python -m ops.passkeys [--kid ID]  >> .env   (keep it secret; every gateway gets the same)
Rotation: make a new key, give the gateways the new BR_QUEUE_PASS_KEY/KID and the old key's
public half in BR_QUEUE_PASS_OLD_KEYS ("kid=public,..."), and drop that after a pass lifetime.
"""

from __future__ import annotations

import argparse

from booking_rush.services.web_push import VapidKey
from waiting_room.passes import PassKeys


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kid", default=None, help="key id (default: random)")
    keys = PassKeys.generate(parser.parse_args().kid)
    for name, value in keys.env().items():
        print(f"{name}={value}")
    print(
        f"# public half, for BR_QUEUE_PASS_OLD_KEYS after the next rotation: {keys.kid}={keys.public_b64()}"
    )
    # Push subscriptions are bound to this key: a new one means every subscription is renewed.
    print(f"BR_VAPID_PRIVATE_KEY={VapidKey.generate()}")


if __name__ == "__main__":
    main()
