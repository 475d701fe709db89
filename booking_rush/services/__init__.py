"""Clients of the outside world: settings read from the environment, where the services are,
Redis/Kafka/PostgreSQL clients, mail, the job queue and the loop of periodic tasks."""
