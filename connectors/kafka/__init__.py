"""Kafka clients: settings, routing (which partition a record goes to), topics, publish,
subscribe and replay. The worker that consumes the events topic is in streams/kafka/."""
