"""The co-travel store: grouped keys, read-your-writes, atomic commits.

Every key lives in a *group* (a prefix ending in the separator ``\\x1f``), and every scan reads
one whole group, optionally narrowed by a suffix prefix. Writes wait in memory until ``commit``
writes them, with the runner's metadata (input position, output sizes), in one atomic batch.
Reads see the pending writes, so the engine never has to know when the last commit was.

Two backends share this class: ``RocksStore`` (rocksdict, on disk; the real one) and
``MemoryStore`` (a dict; for pure unit tests). The same test suite runs on both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from rocksdict import (
    AccessType,
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)


class StoreError(Exception):
    """The store cannot be opened (held by another process, damaged) or written (disk full).

    The store is the bottom layer and imports nothing of tracer; ``tracer.errors`` lists this
    error in its tree, and the CLI reports it like every ``TracerError``."""


log = logging.getLogger(__name__)
SEP = "\x1f"
_AFTER_SEP = "\x20"  # the first character after SEP: the upper bound of a group's keys
# The families written for every trip that only the engine reads (graph.keys: TRIPS, ITINERARIES),
# kept in a RocksDB column family of their own. A secondary instance opened without it
# (``RocksStore(trips=False)``: the console's) skips their writes when it catches up with the run:
# two of the three keys a trip writes, and replaying the run's writes into the secondary's
# memtable is what the console spent most of its CPU on (benchmarks/README.md, the console).
TRIP_FAMILIES = frozenset({"T", "I"})
_TRIPS_CF = "trips"
_first = itemgetter(0)


class Store:
    """Pending writes over a committed view. Subclasses provide the committed view."""

    def __init__(self) -> None:
        self._pending: dict[str, dict[str, bytes | None]] = {}
        # Writes staged in bulk (``stage``), and every later write of their families: kept in order
        # until a read of one of those families needs them in ``_pending`` (``_unstage``), or a
        # commit writes them after ``_pending``.
        self._staged: list[tuple[str, str, bytes | None]] = []
        self._staged_families: set[str] = set()  # the first letters of the staged groups
        self.pending_count = 0
        # Called first thing in every commit, in order, so that the engine can put its event time
        # and the runner flush its outputs and put its input position into the same atomic batch,
        # even when retention commits mid-stream.
        self.commit_hooks: list[Callable[[], None]] = []

    # -- reads ---------------------------------------------------------------------------
    def get(self, group: str, suffix: str) -> bytes | None:
        if self._staged_families:
            self._unstage(group)
        pending = self._pending.get(group)
        if pending is not None and suffix in pending:
            return pending[suffix]
        return self._committed_get(group + suffix)

    def get_many(self, group: str, suffixes: Collection[str]) -> dict[str, bytes | None]:
        """``get`` of many suffixes of one group, the committed ones in one batched read (RocksDB's
        multi-get: 0.75 against 1.3 us a key, and no Python call per key)."""
        if self._staged_families:
            self._unstage(group)
        pending = self._pending.get(group)
        if not pending:  # one pass (a case's contacts' homes: hundreds, seldom pending)
            wanted = list(suffixes)
            if not wanted:
                return {}
            return dict(zip(wanted, self._committed_get_many(group, wanted), strict=True))
        found = {suffix: pending[suffix] for suffix in suffixes if suffix in pending}
        rest = [suffix for suffix in suffixes if suffix not in found]
        if rest:
            found.update(zip(rest, self._committed_get_many(group, rest), strict=True))
        return found

    def scan(self, group: str, narrow: str = "") -> list[tuple[str, bytes]]:
        """Sorted ``(suffix, value)`` pairs of ``group`` whose suffix starts with ``narrow``."""
        if self._staged_families:
            self._unstage(group)
        pending = self._pending.get(group)
        if not pending:
            return list(self._committed_scan(group, narrow))  # sorted already, as RocksDB keeps keys
        found = dict(self._committed_scan(group, narrow))
        for suffix, value in pending.items():
            if suffix.startswith(narrow):
                if value is None:
                    found.pop(suffix, None)
                else:
                    found[suffix] = value
        return sorted(found.items())

    def values(self, group: str) -> list[bytes]:
        """The values of ``scan(group)``, in its order. Without the suffixes, a committed group is
        read at a third of the cost (31 values: 12 against 31 us; no key decoded, sliced or paired)."""
        if self._staged_families:
            self._unstage(group)
        if self._pending.get(group):
            return [value for _, value in self.scan(group)]
        return self._committed_values(group)

    # -- writes --------------------------------------------------------------------------
    def delete(self, group: str, suffix: str) -> None:
        self.put(group, suffix, None)

    def put(self, group: str, suffix: str, value: bytes | None) -> None:
        """Stage a write; ``None`` deletes."""
        if self._staged_families and group[0] in self._staged_families:
            self._staged.append((group, suffix, value))
            self.pending_count += 1
            return
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = {}
        pending[suffix] = value
        self.pending_count += 1

    def put_many(self, group: str, values: dict[str, bytes | None]) -> None:
        """``put`` of each suffix of ``values`` in ``group``, in one dict update (a registry's residents,
        a batch's trips)."""
        if self._staged_families and group[0] in self._staged_families:
            self._log([(group, suffix, value) for suffix, value in values.items()], (group[0],))
            return
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = {}
        pending.update(values)
        self.pending_count += len(values)

    def put_each(self, entries: list[tuple[str, str, bytes | None]]) -> None:
        """``put`` of each ``(group, suffix, value)``, in one call (a case's contacts: a group each)."""
        if self._staged_families:
            self._log(entries, {group[0] for group, _, _ in entries})
            return
        self._put_each(entries)

    def _put_each(self, entries: list[tuple[str, str, bytes | None]]) -> None:
        pending_of = self._pending
        for group, suffix, value in entries:
            pending = pending_of.get(group)
            if pending is None:
                pending = pending_of[group] = {}
            pending[suffix] = value
        self.pending_count += len(entries)

    def stage(self, family: str, entries: list[tuple[str, str, bytes | None]]) -> None:
        """``put_each`` deferred: the entries wait as they are, in order, until a commit writes them
        straight into its batch (a batch's trips: a rider and an itinerary key each, in groups of a
        service day and of a person, most of them new groups), and so do the writes of their
        families that come after them (a revised trip's deletes). Reading a group of their families
        first moves them where ``put`` would have (``_unstage``), so nothing reads around them.
        ``family``: the first letter of every entry's group."""
        self._log(entries, (family,))

    def _log(self, entries: list[tuple[str, str, bytes | None]], families: Iterable[str]) -> None:
        self._staged += entries
        self._staged_families.update(families)
        self.pending_count += len(entries)

    def _unstage(self, group: str) -> None:
        if group[0] in self._staged_families:
            self._fold()

    def _fold(self) -> None:
        staged, self._staged = self._staged, []
        self._staged_families = set()
        self.pending_count -= len(staged)
        self._put_each(staged)

    def commit(self) -> None:
        """Write every pending change at once (all or nothing)."""
        for hook in self.commit_hooks:
            hook()
        if self._pending or self._staged:
            self._write(self._pending, self._staged)
        self._pending, self._staged, self._staged_families = {}, [], set()
        self.pending_count = 0

    def items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Commit, then iterate every key that starts with ``prefix`` (for start-up and retention
        scans, and the lookup's runs of a metro line, ``P|date|metro|L2-``): a group, or any prefix.
        The range ends at ``prefix`` with its last character incremented, the first key past them all."""
        self.commit()
        yield from self._committed_range(prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))

    def purge_groups(self, family: str, below: str) -> Iterator[tuple[str, bytes]]:
        """Commit, then yield and delete every key of ``family`` sorting below ``family + below``.

        Used by retention, whose keys start with a date: the range is contiguous. An empty range is
        not deleted: a range tombstone in RocksDB's memtable turns its bloom filter off for every
        multi-get until the memtable is flushed (a missing key 0.35 -> 1.13 us), and a stream shorter
        than the retention purges nothing on each of its days.
        """
        self.commit()
        found = False
        for item in self._committed_range(family, family + below):
            found = True
            yield item
        if found:
            self._delete_range(family, family + below)

    # -- backend -------------------------------------------------------------------------
    def _committed_get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def _committed_get_many(self, group: str, suffixes: list[str]) -> list[bytes | None]:
        raise NotImplementedError

    def _committed_scan(self, group: str, narrow: str) -> Iterator[tuple[str, bytes]]:
        start = group + narrow  # groups and narrowing prefixes both end with SEP
        end = start[:-1] + _AFTER_SEP
        cut = len(group)
        for key, value in self._committed_range(start, end):
            yield key[cut:], value

    def _committed_values(self, group: str) -> list[bytes]:
        return [value for _, value in self._committed_scan(group, "")]

    def _committed_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def _write(self, pending: dict[str, dict[str, bytes | None]], staged: list[tuple[str, str, bytes | None]]) -> None:
        """Write ``pending``, then ``staged`` in its order (``None``: a delete)."""
        raise NotImplementedError

    def _delete_range(self, start: str, end: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Drop uncommitted writes and release the backend."""
        self._pending, self._staged, self._staged_families = {}, [], set()


class MemoryStore(Store):
    """A dict-backed store for unit tests; scans sort the keys of the dict."""

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[str, bytes] = {}

    def _committed_get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def _committed_get_many(self, group: str, suffixes: list[str]) -> list[bytes | None]:
        return [self._data.get(group + suffix) for suffix in suffixes]

    def _committed_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        # Copied first: a snapshot, as a RocksDB iterator is, so a commit during iteration is safe.
        yield from sorted((k, v) for k, v in self._data.items() if start <= k < end)

    def _write(self, pending: dict[str, dict[str, bytes | None]], staged: list[tuple[str, str, bytes | None]]) -> None:
        writes = [(group, suffix, value) for group, changes in pending.items() for suffix, value in changes.items()]
        for group, suffix, value in writes + staged:
            if value is None:
                self._data.pop(group + suffix, None)
            else:
                self._data[group + suffix] = value

    def _delete_range(self, start: str, end: str) -> None:
        for key in [k for k in self._data if start <= k < end]:
            del self._data[key]


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How a RocksDB store is sized and synced: the one options object every opener passes (the
    embedded runner from ``[runtime]``, each Kafka partition from its ``[kafka]`` budget)."""

    sync: bool = False  # fsync on commit: power-loss safety, slower
    cache_mb: int = 64  # block cache, with the index and filter blocks
    write_buffer_mb: int = 64  # one memtable (two at most)


class RocksStore(Store):
    """The on-disk store: one RocksDB (rocksdict, raw bytes) per state folder.

    ``read_only`` opens a view for queries (graph, clusters, lookup) that works while a run holds
    the write lock; it sees the state as of the moment it was opened. ``secondary`` (a folder of
    its own) opens a RocksDB secondary instance instead: read-only too, and ``catch_up`` brings it
    to what the primary has written since (the workers of ``tracer run --workers`` read the
    coordinator's registry so). ``trips=False`` opens a secondary without ``TRIP_FAMILIES``, which
    it must then not read.
    """

    def __init__(
        self,
        path: str | Path,
        sizes: StoreOptions = StoreOptions(),
        *,
        read_only: bool = False,
        secondary: str | Path | None = None,
        trips: bool = True,
    ) -> None:
        super().__init__()
        writes = not read_only and secondary is None
        assert trips or secondary is not None, "only a secondary instance can leave the trips out"
        # A state caught while its run creates it (RocksDB writes the database before its column
        # families) has no trips' family yet, and holds no trip (_check_families): a read-only view
        # reads the trips' keys from the default family, rightly absent there; a secondary could
        # not see the family created later, and would miss every trip.
        has_family = _check_families(Path(path))  # first: it refuses a state of an earlier tracer
        creating = trips and not writes and not has_family
        if creating and secondary is not None:
            raise StoreError(f"cannot open state {path}: it is still being created (no trips' column "
                             "family yet); open it again")
        with_family = trips and not creating
        options = Options(raw_mode=True)
        options.create_if_missing(writes)
        options.create_missing_column_families(writes)
        if secondary is not None:
            options.set_max_open_files(-1)  # a secondary instance must keep every file open
        options.set_write_buffer_size(sizes.write_buffer_mb << 20)
        options.set_db_write_buffer_size(2 * sizes.write_buffer_mb << 20)  # both families: two memtables' worth
        table = BlockBasedOptions()
        table.set_block_cache(Cache(sizes.cache_mb << 20))
        table.set_bloom_filter(10, False)
        # Memory follows the cache and the memtables, not the store's size: index and filter
        # blocks live in the block cache, cut into small partitions (a two-level index) so that a
        # read loads only the pieces it needs, with the top levels and level 0 pinned. Left outside
        # the cache, those blocks grow with every SST file (445 -> 512 MB and rising at 3 million
        # residents); whole, inside a small cache, they evicted each other (reads 30x slower). Only
        # the pinned top levels and level 0 still grow with the number of files.
        table.set_index_type(BlockBasedIndexType.two_level_index_search())
        table.set_partition_filters(True)
        table.set_metadata_block_size(4096)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_top_level_index_and_filter(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_max_write_buffer_number(2)  # at most two memtables
        # A bloom filter over the memtable's whole keys: most reads are misses (a new trip's id, an
        # absent alert), and they no longer walk the memtable's skip list. Measured: a missing-key
        # get 1.09 -> 0.54 us alone, 2.07 -> 1.02 us inside the ingest benchmark.
        options.set_memtable_whole_key_filtering(True)
        options.set_memtable_prefix_bloom_ratio(0.1)
        options.set_block_based_table_factory(table)
        try:
            if secondary is not None:
                access = AccessType.secondary(str(secondary))
            else:
                access = AccessType.read_only() if read_only else AccessType.read_write()
            self._db = Rdict(str(path), options, column_families={_TRIPS_CF: options} if with_family else {},
                             access_type=access)
        except Exception as exc:  # rocksdict raises plain Exception for lock and I/O errors
            raise StoreError(f"cannot open state {path}: {exc}") from exc
        self._trips = self._db.get_column_family(_TRIPS_CF) if with_family else self._db if creating else None
        self._trips_cf = self._db.get_column_family_handle(_TRIPS_CF) if with_family else None
        self._write_options = WriteOptions()
        self._write_options.sync = sizes.sync

    def catch_up(self) -> None:
        """A secondary instance: see what the primary has written since it was opened or last caught up."""
        try:
            self._db.try_catch_up_with_primary()
        except Exception as exc:  # rocksdict raises plain Exception
            raise StoreError(f"cannot read the primary state: {exc}") from exc

    def memory_mb(self) -> float:
        """RocksDB's own accounting of its memory: block cache (with the index and filter blocks),
        memtables and table readers. For progress lines and the memory benchmark."""
        names = ("cur-size-all-mem-tables", "estimate-table-readers-mem")
        families = [self._db] if self._trips is None or self._trips is self._db else [self._db, self._trips]
        found = sum(db.property_int_value(f"rocksdb.{name}") or 0 for db in families for name in names)
        return (found + (self._db.property_int_value("rocksdb.block-cache-usage") or 0)) / 2**20  # one cache

    def _family(self, key: str) -> Rdict:
        """The column family holding ``key`` (every key of a family, every range within one)."""
        if key[0] not in TRIP_FAMILIES:
            return self._db
        if self._trips is None:
            raise StoreError(f"this instance was opened without the trips' families, and read {key[0]!r}")
        return self._trips

    def _committed_get(self, key: str) -> bytes | None:
        return self._family(key).get(key.encode())

    def _committed_get_many(self, group: str, suffixes: list[str]) -> list[bytes | None]:
        family = self._family(group)
        keys = [(group + suffix).encode() for suffix in suffixes]
        if len(keys) < 3:  # a multi-get has a fixed cost: one key took 3.7 us, against 2.3 alone
            return [family.get(key) for key in keys]
        return family.get(keys)

    def _committed_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        read = ReadOptions()
        read.set_iterate_upper_bound(end.encode())
        for key, value in self._family(start).items(from_key=start.encode(), read_opt=read):
            yield key.decode(), value

    def _committed_values(self, group: str) -> list[bytes]:
        read = ReadOptions()
        read.set_iterate_upper_bound((group[:-1] + _AFTER_SEP).encode())
        return list(self._family(group).values(from_key=group.encode(), read_opt=read))

    def _write(self, pending: dict[str, dict[str, bytes | None]], staged: list[tuple[str, str, bytes | None]]) -> None:
        """One WriteBatch of the pending writes in key order, then the staged ones in key order:
        RocksDB's memtable (a skip list) inserts keys that follow each other with few cache misses,
        and that costs less than the sort (a trip's puts and commit 13.9-15.4 against 15.7-17.3 us of
        CPU staged as they came, benchmarks/README.md)."""
        batch = WriteBatch(raw_mode=True)
        put, delete = batch.put, batch.delete
        for group in sorted(pending):
            changes = pending[group]
            family = self._trips_cf if group[0] in TRIP_FAMILIES else None
            for suffix in sorted(changes):
                value = changes[suffix]
                if value is None:
                    delete((group + suffix).encode(), family)
                else:
                    put((group + suffix).encode(), value, family)
        if staged:  # sorted by key alone, stably: of a key staged twice, the later is written last
            trips, families = self._trips_cf, TRIP_FAMILIES
            rows = sorted([((group + suffix).encode(), value, trips if group[0] in families else None)
                           for group, suffix, value in staged], key=_first)
            for key, value, family in rows:
                if value is None:
                    delete(key, family)
                else:
                    put(key, value, family)
        self._apply(batch)

    def _delete_range(self, start: str, end: str) -> None:
        batch = WriteBatch(raw_mode=True)
        batch.delete_range(start.encode(), end.encode(), self._trips_cf if start[0] in TRIP_FAMILIES else None)
        self._apply(batch)

    def _apply(self, batch: WriteBatch) -> None:
        try:
            self._db.write(batch, self._write_options)
        except Exception as exc:  # rocksdict raises plain Exception for I/O errors (disk full)
            raise StoreError(f"cannot write state: {exc}") from exc

    def close(self) -> None:
        """Release the database, dropping uncommitted writes. A failure here (after a failed write)
        is logged, not raised: the error that caused it is on its way, and RocksDB recovers on reopen."""
        super().close()
        self._trips = self._trips_cf = None
        try:
            self._db.close()
        except Exception as exc:
            log.warning("closing the state after an error: %s", exc)


def _check_families(path: Path) -> bool:
    """Whether the state at ``path`` has the trips' column family. Refuse a state written before the
    trips' families had a column family of their own: read now, its trips would seem gone (and a run
    would trace every ride again as new). A state without that column family and without trips (a
    run killed while it created the state, or still creating it) is not refused."""
    if not (path / "CURRENT").exists():
        return False
    try:
        if _TRIPS_CF in Rdict.list_cf(str(path)):
            return True
        options = Options(raw_mode=True)
        earlier = Rdict(str(path), options, column_families={}, access_type=AccessType.read_only())
    except Exception as exc:  # rocksdict raises plain Exception
        raise StoreError(f"cannot open state {path}: {exc}") from exc
    try:
        held = any(next(iter(earlier.keys(from_key=family.encode())), b"").startswith(family.encode())
                   for family in TRIP_FAMILIES)
    finally:
        earlier.close()
    if held:
        raise StoreError(f"{path} was written by an earlier tracer (its trips are not in a column family of "
                         "their own): trace the inputs again into a new --state")
    return False
