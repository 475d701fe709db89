"""The payment workers (`python -m workers.payment_worker`): Dramatiq actors on the aux Redis
that charge, ask and refund at the payment provider and send the mails (jobs.py), the provider
interface and its fake (provider.py), and the mails' texts (notifications.py)."""
