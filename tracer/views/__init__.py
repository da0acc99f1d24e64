"""The views street offices and the public act on (issue 14): health status (随申码), call lists
(排查名单) and tracing KPIs (排查进度), derived from alerts, cases, follow-ups and event time.

    facts.py     what is kept of a person (alert summaries, cases, follow-ups)
    health.py    the status, a pure function of the facts and now
    rows.py      call-list rows and KPIs, pure functions too
    maintain.py  ``Views``: keeps the facts in the store step by step, emits status changes
    read.py      the views read back: ``call_list``, ``status``, ``tracing_kpis``, ``listed_in``, ...
"""

from tracer.views.maintain import VIEWED_EVENTS, Views
from tracer.views.read import (
    call_list,
    event_time,
    has_followup,
    hold,
    listed_in,
    offices,
    status,
    statuses,
    tracing_kpis,
)
from tracer.views.rows import CALL_COLUMNS

__all__ = ["CALL_COLUMNS", "VIEWED_EVENTS", "Views", "call_list", "event_time", "has_followup", "hold", "listed_in",
           "offices", "status", "statuses", "tracing_kpis"]
