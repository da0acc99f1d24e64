"""Kafka mode: the worker (a consumer-group member) and the per-partition task it runs."""
