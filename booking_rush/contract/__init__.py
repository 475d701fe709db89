"""What processes say to each other: commands, events and replies (messages), topic names,
job names and shapes, audit records, payment methods, and the clock they share (now_ms)."""
