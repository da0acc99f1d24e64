"""The web console (`tracer serve`, docs/console.md): street offices' call lists, live, and their
actions as follow-ups; the supervisors' progress; the epidemiologists' cases; the staff's health
status lookup; the public same-trip lookup. A process over the state, as the runners are.

    app.py         the routes, sessions, error pages and the server        (ASGI: Starlette, uvicorn)
    data.py        ConsoleData: the one interface to the state and the stream
    reads.py       the reads of one state (views, analysis), shared by both modes
    embedded.py    ConsoleData over a run's --state and --out (a RocksDB secondary instance)
    outputs.py     what the run has written that the state now holds
    followups.py   the follow-up writer (one line an action, once), and what both modes share of it
    kafka.py       ConsoleData in Kafka mode: tracer views's state, the status and queue topics
    broker.py      its Kafka clients (aiokafka), in a thread: what the topics say, the follow-ups published
    live.py        the loop that looks at the state, and the pages' event streams (SSE)
    users.py       the users file and its password hashes;  auth.py  sessions, CSRF, who may do what
    login.py       the login page and its rate limit;  ratelimit.py  the limits, in memory
    office.py, dashboard.py, cases.py, staff.py, public.py, metrics.py   the pages, by who uses them
    pages.py, text.py, chart.py, templates/, static/   rendering: Jinja2, the words (zh, en), the SVG chart
    middleware.py  security headers, and the access log that names no one
    context.py     what a request reaches: the console's parts
"""
