"""Importers of real feeds (registry, manifests, tickets, taps, ...) into tracer events; docs/import.md."""
