"""What an import did with every record it read: written, not traced, or rejected, and why.

Nothing is lost silently: each record read is counted exactly once, so
``records == written + not traced + rejected`` (``check``). Rejections are counted by reason, and
the first ``SAMPLES`` rows of each reason the import meets (in file order, but for taps, met as
their cards are paired) are named by where they are (``line 12``), so a person can open the file
there; a report never quotes a record's values, which may hold ID numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

SAMPLES = 20  # rows named per rejection reason; the rest are counted


class Rejected(ValueError):
    """A record that cannot be used; ``str()`` is the reason, which must not quote an ID number."""


class NotTraced(Exception):
    """A record of something this engine does not trace; ``str()`` is what it is (``bus``)."""


@dataclass
class Report:
    """Counts of one import. ``written`` counts records, ``events`` what they became (a nosugar
    record with two train numbers is two exposure events)."""

    records: int = 0  # rows read, good or bad
    written: int = 0
    events: int = 0
    clean: int = 0  # records written without a caveat (a note)
    not_traced: Counter[str] = field(default_factory=Counter)  # records of what this engine does not trace
    rejected: Counter[str] = field(default_factory=Counter)  # rows that could not be used, by reason
    rejected_rows: list[tuple[str, str]] = field(default_factory=list)  # (where, why), as met, sampled
    notes: Counter[str] = field(default_factory=Counter)  # used, with a caveat
    samples: int | None = SAMPLES  # rows named per reason; None: every one
    noted: int = 0  # notes made, so an importer can tell whether a record had one
    # A side file's rows (the card-holder list): not records of the feed, so not in ``check``.
    holders: tuple[int, int] | None = None  # (rows of the card-holder list, cards given a holder)
    aside: Counter[str] = field(default_factory=Counter)  # its rows not used, by reason
    aside_rows: list[tuple[str, str]] = field(default_factory=list)  # (where, why), sampled as rejected_rows
    cards: tuple[int, int] | None = None  # (cards the feed named with a known holder, without one)

    def note(self, caveat: str) -> None:
        """A record used, with a caveat a person should know."""
        self.notes[caveat] += 1
        self.noted += 1

    def reject(self, where: str, reason: str) -> None:
        self.rejected[reason] += 1
        if self.samples is None or self.rejected[reason] <= self.samples:
            self.rejected_rows.append((where, reason))

    def set_aside(self, where: str, reason: str) -> None:
        """A side file's row not used (the card-holder list's), named by its file and line."""
        self.aside[reason] += 1
        if self.samples is None or self.aside[reason] <= self.samples:
            self.aside_rows.append((where, reason))

    def check(self) -> None:
        """Every record counted once; an AssertionError here is a bug in an importer."""
        assert self.records == self.written + sum(self.not_traced.values()) + sum(self.rejected.values()), self


def print_report(report: Report, stream: TextIO, what: str = "events") -> None:
    """The report for a person, on ``stream`` (standard error: the events may be on standard output)."""
    report.check()
    print(f"records        {report.records:,} read", file=stream)
    print(
        f"written        {report.written:,} as {report.events:,} {what} ({report.clean:,} records parsed cleanly)",
        file=stream,
    )
    if report.holders is not None:
        rows, held = report.holders
        print(f"card holders   {rows:,} rows read, {held:,} cards with a known holder", file=stream)
    if report.cards is not None:
        held, unheld = report.cards
        print(f"cards          {held + unheld:,} named: {held:,} with a known holder, {unheld:,} without "
              "(cards without a known holder ride as a person of their own)", file=stream)
    titled = (("not traced", report.not_traced), ("rejected", report.rejected), ("used, but", report.notes),
              ("holder unused", report.aside))
    for title, counts in titled:
        for reason, count in counts.most_common():
            print(f"{title:14} {count:6,}  {reason}", file=stream)
    _rows(stream, "rejected row", report.rejected_rows, sum(report.rejected.values()))
    _rows(stream, "holder row", report.aside_rows, sum(report.aside.values()))


def _rows(stream: TextIO, title: str, rows: list[tuple[str, str]], total: int) -> None:
    """The sampled rows of a kind, by where they are, and how many more were counted."""
    for where, reason in rows:
        print(f"{title:14} {where}: {reason}", file=stream)
    if total > len(rows):
        print(f"{title:14} ... and {total - len(rows):,} more, counted above", file=stream)
