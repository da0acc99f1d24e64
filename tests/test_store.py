"""One suite for both store backends: reads see pending writes; commits are all or nothing."""

from __future__ import annotations

import pytest
from rocksdict import Options, Rdict

from graph.keys import ITINERARIES, TRIPS, group
from graph.store import TRIP_FAMILIES, RocksStore, Store, StoreError

G = "R\x1f2020-01-20\x1fmetro\x1fL1\x1f"


def test_get_and_scan_see_pending_writes(store: Store):
    store.put(G, "b\x1ft1", b"1")
    store.put(G, "a\x1ft2", b"2")
    store.put("R\x1f2020-01-20\x1fmetro\x1fL10\x1f", "x\x1ft", b"other group")
    assert store.get(G, "b\x1ft1") == b"1"
    assert store.scan(G) == [("a\x1ft2", b"2"), ("b\x1ft1", b"1")]
    store.commit()
    store.delete(G, "a\x1ft2")
    assert store.scan(G) == [("b\x1ft1", b"1")]
    assert store.get(G, "a\x1ft2") is None


def test_get_many_sees_pending_writes_and_deletes(store: Store):
    store.put(G, "a", b"1")
    store.put(G, "b", b"2")
    store.put(G, "c", b"3")
    store.commit()
    store.put(G, "b", b"20")
    store.delete(G, "c")
    store.put(G, "d", b"4")
    assert store.get_many(G, ["a", "b", "c", "d", "e"]) == {"a": b"1", "b": b"20", "c": None, "d": b"4", "e": None}
    assert store.get_many(G, []) == {}


def test_scan_narrows_by_suffix_prefix(store: Store):
    for suffix in ("p1\x1ft1", "p1\x1ft2", "p10\x1ft3", "p2\x1ft4"):
        store.put(G, suffix, b"")
    store.commit()
    store.put(G, "p1\x1ft0", b"")
    assert [s for s, _ in store.scan(G, "p1\x1f")] == ["p1\x1ft0", "p1\x1ft1", "p1\x1ft2"]


def test_commit_hooks_join_the_batch(store: Store):
    store.commit_hooks.append(lambda: store.put("M\x1f", "position", b"42"))
    store.put(G, "k", b"v")
    store.commit()
    assert store.get("M\x1f", "position") == b"42" and store.pending_count == 0


def test_purge_yields_and_deletes_a_date_range(store: Store):
    for day in ("2020-01-18", "2020-01-19", "2020-01-20"):
        store.put(f"R\x1f{day}\x1fmetro\x1fL1\x1f", "p\x1ft", day.encode())
    purged = [v for _, v in store.purge_groups("R\x1f", "2020-01-20")]
    assert purged == [b"2020-01-18", b"2020-01-19"]
    assert [v for _, v in store.items("R\x1f")] == [b"2020-01-20"]


def test_uncommitted_writes_are_lost_on_close(tmp_path):
    first = RocksStore(tmp_path / "s")
    first.put(G, "kept", b"1")
    first.commit()
    first.put(G, "lost", b"2")
    first.close()
    again = RocksStore(tmp_path / "s")
    assert again.scan(G) == [("kept", b"1")]
    again.close()


def test_the_trips_families_read_and_write_like_any_other(store: Store):
    trips, itinerary = group(TRIPS), group(ITINERARIES, "p1")
    for suffix in ("t1", "t2", "t3"):
        store.put(trips, suffix, suffix.encode())
    store.put(itinerary, "2020-01-18\x1ft1", b"")
    store.put(itinerary, "2020-01-20\x1ft2", b"")
    store.commit()
    store.delete(trips, "t3")
    assert store.get(trips, "t1") == b"t1" and store.get_many(trips, ["t1", "t2", "t3", "t4"]) == {
        "t1": b"t1", "t2": b"t2", "t3": None, "t4": None}
    assert [suffix for suffix, _ in store.scan(itinerary)] == ["2020-01-18\x1ft1", "2020-01-20\x1ft2"]
    assert [key for key, _ in store.purge_groups(itinerary, "2020-01-19")] == [itinerary + "2020-01-18\x1ft1"]
    assert [key for key, _ in store.items(trips)] == [trips + "t1", trips + "t2"]
    assert [key for key, _ in store.items(itinerary)] == [itinerary + "2020-01-20\x1ft2"]
    assert store.scan(G) == []  # nothing of theirs in another family


def test_a_secondary_without_the_trips_catches_up_with_the_rest_and_refuses_to_read_them(tmp_path):
    assert {TRIPS, ITINERARIES} == TRIP_FAMILIES  # graph.store names them by their letters
    primary = RocksStore(tmp_path / "s")
    reader = RocksStore(tmp_path / "s", secondary=tmp_path / "reader", trips=False)
    try:
        primary.put(group(TRIPS), "t1", b"trip")
        primary.put(G, "p1\x1ft1", b"rider")
        primary.commit()
        reader.catch_up()
        assert reader.scan(G) == [("p1\x1ft1", b"rider")]
        with pytest.raises(StoreError, match="without the trips"):
            reader.get(group(TRIPS), "t1")
    finally:
        reader.close()
        primary.close()


def test_a_state_of_an_earlier_tracer_is_refused(tmp_path):
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    earlier = Rdict(str(tmp_path / "s"), options)  # one column family: its trips among the rest
    earlier[b"T\x1ft1"] = b"trip"
    earlier.close()
    for opened in ({}, {"read_only": True}, {"secondary": tmp_path / "reader"}):
        with pytest.raises(StoreError, match="written by an earlier tracer"):
            RocksStore(tmp_path / "s", **opened)
    cut_short = Rdict(str(tmp_path / "new"), options)  # a run killed as it created its state: nothing in it
    cut_short.close()
    store = RocksStore(tmp_path / "new")
    store.put(group(TRIPS), "t1", b"trip")
    store.commit()
    assert store.get(group(TRIPS), "t1") == b"trip"
    store.close()


def test_a_state_caught_while_its_run_creates_it(tmp_path):
    """RocksDB creates a database before its column families: a reader opening in between (a call
    list, the Kafka views' test polling a state its process is creating) finds no trips' family. A
    read-only view reads it as holding no trip; a secondary, which would never see the family created
    later, is told to open again."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    creating = Rdict(str(tmp_path / "s"), options)
    creating[b"M\x1fhorizon"] = b"1"
    creating.close()
    view = RocksStore(tmp_path / "s", read_only=True)
    try:
        assert view.get(group(TRIPS), "t1") is None
        assert list(view.items(group(TRIPS))) == []
        assert view.get("M\x1f", "horizon") == b"1"
        assert view.memory_mb() >= 0
    finally:
        view.close()
    with pytest.raises(StoreError, match="still being created"):
        RocksStore(tmp_path / "s", secondary=tmp_path / "reader")
    console = RocksStore(tmp_path / "s", secondary=tmp_path / "reader2", trips=False)  # the console's reads
    try:
        assert console.get("M\x1f", "horizon") == b"1"
    finally:
        console.close()


def test_values_are_the_scans_values_with_pending_writes_and_deletes(store: Store):
    for suffix, value in (("b\x1ft1", b"1"), ("a\x1ft2", b"2"), ("c\x1ft3", b"3")):
        store.put(G, suffix, value)
    store.put("R\x1f2020-01-20\x1fmetro\x1fL10\x1f", "x\x1ft", b"other group")
    assert store.values(G) == [value for _, value in store.scan(G)] == [b"2", b"1", b"3"]  # pending only
    store.commit()
    assert store.values(G) == [b"2", b"1", b"3"]  # committed only
    store.delete(G, "b\x1ft1")
    store.put(G, "a\x1ft0", b"0")
    assert store.values(G) == [value for _, value in store.scan(G)] == [b"0", b"2", b"3"]
    assert store.values("R\x1f2020-01-21\x1fmetro\x1fL1\x1f") == []


def test_get_many_without_pending_writes_reads_each_suffix_once(store: Store):
    store.put(G, "a", b"1")
    store.commit()
    assert store.get_many(G, {"a", "b"}) == {"a": b"1", "b": None}
    assert store.get_many(G, set()) == {}


def test_put_each_is_put_of_each_entry(store: Store):
    store.put(G, "a", b"1")
    store.commit()
    store.put_each([(G, "a", None), (G, "b", b"2"), ("X\x1fP1\x1f", "id", b"c:C1")])
    assert store.pending_count == 3
    assert store.scan(G) == [("b", b"2")] and store.get("X\x1fP1\x1f", "id") == b"c:C1"


def test_staged_writes_are_put_each_deferred(store: Store):
    """Staged entries wait outside the pending writes; every read or write of their families sees
    them in their place, a commit writes them, and a later write of the same key wins."""
    other = "I\x1fP1\x1f"
    store.put(G, "a", b"1")
    store.put(G, "z", b"old")
    store.commit()
    store.stage("R", [(G, "b", b"2"), (G, "z", b"staged")])
    store.stage("I", [(other, "2020-01-20\x1ft1", b"")])
    assert store.pending_count == 3
    assert store.get_many("T\x1f", ["t1"]) == {"t1": None}  # another family: nothing moved
    assert store.scan(G) == [("a", b"1"), ("b", b"2"), ("z", b"staged")]
    store.stage("R", [(G, "c", b"3"), (G, "c", b"4")])  # of a key staged twice, the later
    store.delete(G, "a")
    store.put(G, "b", b"20")  # after the staged b
    store.stage("R", [(G, "z", b"last")])
    store.commit()
    assert store.pending_count == 0
    assert store.scan(G) == [("b", b"20"), ("c", b"4"), ("z", b"last")]
    assert store.scan(other) == [("2020-01-20\x1ft1", b"")]
    store.stage("R", [(G, "d", b"5")])
    assert store.values(G) == [b"20", b"4", b"5", b"last"] and store.get(G, "d") == b"5"


def test_writes_after_staged_ones_keep_their_order(store: Store):
    """A revised trip: its keys staged, then deleted and written again, before anything reads them."""
    store.stage("R", [(G, "a", b"1"), (G, "b", b"2")])
    store.delete(G, "a")
    store.put_many(G, {"b": b"20"})
    store.put_each([(G, "c", b"3"), ("X\x1fP1\x1f", "id", b"c:C1")])
    assert store.pending_count == 6
    store.commit()
    assert store.scan(G) == [("b", b"20"), ("c", b"3")] and store.get("X\x1fP1\x1f", "id") == b"c:C1"
