"""A command's round trip through Kafka and back: `dispatch` sends it and waits, bounded, for
its answer; `batcher` puts one loop iteration's commands for a show in one record; `replies`
wakes the waiting handler when a worker's batch reply names it; `pubsub` keeps the reply
channel subscribed."""
