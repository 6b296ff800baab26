"""In-memory caches: per-key locks that free themselves, and an LRU bounded in bytes (so a
handful of long tracks cannot hold the memory that many short ones would). The server's
timelines and the mixer's decoded stems use them."""

from __future__ import annotations

import collections
import contextlib
import threading
import typing as tp


class KeyLocks:
    """One lock per key (a render id, a timeline), so concurrent identical requests compute
    once. A lock lives only while someone holds or waits for it, so the table does not grow
    with every key ever seen."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}          # id -> [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, key: str, blocking: bool = True) -> tp.Iterator[bool]:
        """Hold ``key``'s lock; with ``blocking=False`` yield False at once if it is taken."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        got = entry[0].acquire(blocking)
        try:
            yield got
        finally:
            if got:
                entry[0].release()
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


class MemoryLRU:
    """Values with their size in bytes; the least recently used go past ``max_bytes``. A value
    larger than ``max_item_fraction`` of the budget (default a quarter) is not kept at all (it
    would evict everything)."""

    def __init__(self, max_bytes: int, *, max_item_fraction: float = 0.25):
        self.max_bytes = max_bytes
        self.max_item = int(max_bytes * max_item_fraction)
        self.used = 0
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[str, tuple[tp.Any, int]] = \
            collections.OrderedDict()

    def put(self, key: str, value: tp.Any, nbytes: int) -> None:
        if nbytes > self.max_item:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._items[key] = (value, nbytes)
            self.used += nbytes
            while self.used > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self.used -= size

    def get(self, key: str) -> tp.Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def __len__(self) -> int:
        return len(self._items)
