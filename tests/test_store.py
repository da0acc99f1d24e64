"""One suite for both store backends: reads see pending writes; commits are all or nothing."""

from __future__ import annotations

from graph.store import RocksStore, Store

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
