"""`python -m workers.payment_worker`: a payment worker (workers/payments/worker.py)."""

from __future__ import annotations

import sys

from workers.payments.worker import main

if __name__ == "__main__":
    sys.exit(main())
