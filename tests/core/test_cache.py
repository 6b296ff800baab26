"""The in-memory caches: an LRU bounded in bytes, per-key locks that free themselves."""

import threading

from deepaudio.core.cache import KeyLocks, MemoryLRU


def test_memory_lru_is_bounded_in_bytes():
    lru = MemoryLRU(1000)
    for k in range(10):
        lru.put(str(k), k, 200)
    assert lru.used <= 1000 and len(lru) == 5 and lru.get("9") == 9 and lru.get("0") is None
    lru.put("big", "x", 300)                     # over a quarter of the budget: not kept
    assert lru.get("big") is None and lru.used <= 1000
    whole = MemoryLRU(1000, max_item_fraction=1.0)
    whole.put("big", "x", 900)
    whole.put("small", "y", 200)                 # the big one goes to make room
    assert whole.get("big") is None and whole.get("small") == "y" and whole.used == 200


def test_key_locks_hold_one_key_and_free_themselves():
    locks = KeyLocks()
    held, release = threading.Event(), threading.Event()

    def holder():
        with locks.hold("a"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    with locks.hold("a", blocking=False) as got:
        assert not got
    with locks.hold("b", blocking=False) as got:
        assert got
    release.set()
    t.join(10)
    assert len(locks) == 0
