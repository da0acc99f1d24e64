"""A simulated Shanghai for tracer: residents, metro, trains and flights, an outbreak, the street
offices following up its contacts, and the feeds' disorder, written as an event stream
(docs/schema.md) with the oracle's expected alerts.

Modules: ``city`` (subdistricts, residents), ``metro`` / ``rail`` / ``air`` (networks and daily
timetables), ``schedule``, ``outbreak`` (cases and their rides), ``rides`` (trip events),
``contacts`` (who meets a case or a close contact aboard), ``offices`` (follow-up events),
``stream`` (event-time order and disorder), ``generate`` and ``command`` (the ``tracer generate`` CLI).
"""

from tracer.simulate.command import add_generate_arguments, run_generate
from tracer.simulate.generate import generate

__all__ = ["add_generate_arguments", "generate", "run_generate"]
