"""`python -m benchmarks NAME [flags]`: small by default (about a minute each), larger by flags.

Results print as a table and are saved as JSON (and SVG for lookup) under benchmarks/results/.
Every figure is reported against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import (
    alert_cost,
    batch,
    city_day,
    console,
    console_load,
    import_feeds,
    ingest,
    live,
    lookup,
    memory,
    metro_reach,
    plain_lines,
    transit_import,
    views,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    names = parser.add_subparsers(dest="name", required=True)
    one = names.add_parser("ingest", help="engine trip events/s against a bare orjson+RocksDB loop")
    one.add_argument("--trips", type=int, default=300_000)
    one.add_argument("--repeat", type=int, default=3)
    one.set_defaults(run=ingest.main)
    one = names.add_parser("lookup", help="case-to-alerts latency against store size")
    one.add_argument("--sizes", default="100000,300000,1000000", help="stored trips, comma separated (e.g. up to 5e7)")
    one.add_argument("--cases", type=int, default=200)
    one.set_defaults(run=lookup.main)
    one = names.add_parser("alert-cost", help="CPU per alert change of a case report (600 direct contacts), warm")
    one.add_argument("--cases", type=int, default=40, help="case reports per round")
    one.add_argument("--rounds", type=int, default=5)
    one.add_argument("--secondary", action="store_true", help="trace secondary contacts too")
    one.set_defaults(run=alert_cost.main)
    one = names.add_parser("memory", help="RSS over a long stream with a short retention")
    one.add_argument("--persons", type=int, default=300_000)
    one.add_argument("--days", type=int, default=14)
    one.add_argument("--retention", type=int, default=3)
    one.set_defaults(run=memory.main)
    one = names.add_parser("batch", help="the same contacts by a SQLite self-join, and time-to-contacts")
    one.add_argument("--persons", type=int, default=50_000)
    one.add_argument("--days", type=int, default=3)
    one.add_argument("--cases", type=int, default=40)
    one.set_defaults(run=batch.main)
    one = names.add_parser("live", help="case-to-alert latency on a feed piped into `tracer run -`")
    one.add_argument("--persons", type=int, default=100_000)
    one.add_argument("--rate", type=int, default=20_000, help="lines a second")
    one.add_argument("--probes", type=int, default=400, help="refused lines timed as the round-trip baseline")
    one.add_argument("--follow", action="store_true", help="append to a file read by `tracer run FILE --follow`")
    one.set_defaults(run=live.main)
    one = names.add_parser("city-day", help="tracer run on a simulated city day against a DuckDB self-join of it")
    one.add_argument("--scale", type=float, default=0.1, help="1 is a whole Shanghai day: 25M residents, 1,000 cases")
    one.add_argument("--cases", type=int, help="reported cases (default: 1,000 x scale)")
    one.add_argument("--data", type=Path, default=city_day.DEFAULT_DATA, help="where generated days are kept")
    one.add_argument("--repeat", type=int, default=1)
    one.add_argument("--tracer-args", default="", help='flags for tracer run, e.g. --tracer-args="--config fast.toml"')
    one.set_defaults(run=city_day.main)
    one = names.add_parser("plain-lines", help="decoding a day's lines: the fast lane against the full parser")
    one.add_argument("--persons", type=int, default=100_000, help="residents of the generated day")
    one.add_argument("--repeat", type=int, default=3)
    one.set_defaults(run=plain_lines.main)
    one = names.add_parser("views", help="what status and call lists cost: runs with and without, calllist latency")
    one.add_argument("--persons", type=int, default=20_000, help="residents of the demo city")
    one.add_argument("--cases", type=int, default=30)
    one.add_argument("--trips", type=int, default=300_000, help="trips of the ingest input")
    one.add_argument("--residents", type=int, default=1_000, help="residents under observation in one office")
    one.add_argument("--repeat", type=int, default=3)
    one.set_defaults(run=views.main)
    one = names.add_parser("console", help="an alert on an open office page: tracer run --follow and tracer serve; "
                           "--load: the run's throughput with the console under load, against none")
    one.add_argument("--load", action="store_true",
                     help="tracer run alone and with the console (pages open, public lookups), alternating")
    one.add_argument("--persons", type=int, help="residents of the generated city (default 20,000; --load 200,000)")
    one.add_argument("--days", type=int, help="days of travel (default 1; --load 3)")
    one.add_argument("--cases", type=int, help="cases reported (default 10; --load 30)")
    one.add_argument("--offices", type=int, default=50, help="office pages open at once")
    one.add_argument("--clients", type=int, help="event streams open in all, spread over the offices "
                     "(default 50; --load 200)")
    one.add_argument("--probes", type=int, default=100, help="new close contacts, one office at a time")
    one.add_argument("--lookups", type=float, default=50.0, help="--load: public lookups a second")
    one.add_argument("--pairs", type=int, default=3, help="--load: trials alone and with the console")
    one.add_argument("--console-nice", type=int, default=0, help="--load: runtime.console_nice of tracer serve")
    one.set_defaults(run=lambda args: (console_load if args.load else console).main(args))
    one = names.add_parser("import", help="tracer import records/s per adapter on generated feeds, one core")
    one.add_argument("--persons", type=int, default=50_000, help="residents of the generated city")
    one.add_argument("--days", type=int, default=3)
    one.add_argument("--records", type=int, default=200_000, help="rows of each feed (copies name other people)")
    one.add_argument("--repeat", type=int, default=3)
    one.set_defaults(run=import_feeds.main)
    transit_import.arguments(names.add_parser("transit-import", help=transit_import.HELP))
    metro_reach.arguments(names.add_parser("metro-reach", help=metro_reach.HELP))
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
