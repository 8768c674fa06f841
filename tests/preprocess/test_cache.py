"""The on-disk preprocessing cache: keys, atomic writes, corruption detection."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mekit.preprocess import cache as cachemod
from mekit.preprocess.cache import Cache, param_key, sample_filename


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "c")


def _arrays():
    return {"flow": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "crop": np.full((4, 4, 3), 7, np.uint8)}


def test_roundtrip_keeps_arrays_and_meta(cache):
    key = param_key("flow", {"size": 128})
    p = cache.save("flow", key, "casme2/sub01/EP02_01f", _arrays(), {"apex": 59})
    assert p is not None and p.exists() and p.parent.name == key and p.parent.parent.name == "flow"
    arrays, meta = cache.load("flow", key, "casme2/sub01/EP02_01f")
    np.testing.assert_array_equal(arrays["flow"], _arrays()["flow"])
    assert arrays["crop"].dtype == np.uint8
    assert meta["apex"] == 59 and meta["sample_id"] == "casme2/sub01/EP02_01f"
    assert cache.load("flow", key, "casme2/sub01/other") is None
    assert cache.load("flow", param_key("flow", {"size": 112}), "casme2/sub01/EP02_01f") is None


def test_keys_are_stable_and_sensitive_to_every_input():
    a = param_key("flow", {"size": 128, "params": {"nscales": 3, "warps": 3}})
    assert a == param_key("flow", {"params": {"warps": 3, "nscales": 3}, "size": 128})  # order-free
    assert a == param_key("flow", {"size": 128, "params": {"nscales": 3, "warps": 3}}, version=1)
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != param_key("flow", {"size": 112, "params": {"nscales": 3, "warps": 3}})
    assert a != param_key("flow", {"size": 128, "params": {"nscales": 5, "warps": 3}})
    assert a != param_key("frames", {"size": 128, "params": {"nscales": 3, "warps": 3}})
    assert a != param_key("flow", {"size": 128, "params": {"nscales": 3, "warps": 3}}, version=2)
    # tuples and lists hash alike (configs from YAML give lists, from code tuples)
    assert param_key("x", {"pairs": ("a", "b")}) == param_key("x", {"pairs": ["a", "b"]})


def test_file_names_are_safe_and_unique():
    a, b = sample_filename("casme2/sub01/EP02_01f"), sample_filename("casme2_sub01_EP02_01f")
    assert a != b and "/" not in a and a.endswith(".npz") and "EP02_01f" in a


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_entry_is_detected_logged_and_removed(cache, caplog, damage):
    key = param_key("flow", {})
    p = cache.save("flow", key, "s1", _arrays())
    data = p.read_bytes()
    p.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00garbage" * 50, "empty": b""}[damage])
    with caplog.at_level(logging.WARNING, logger="mekit.preprocess.cache"):
        assert cache.load("flow", key, "s1") is None
    assert "corrupt" in caplog.text and str(p) in caplog.text
    assert not p.exists()  # the next run recomputes it


def test_checksum_mismatch_is_detected(cache, caplog):
    key = param_key("flow", {})
    p = cache.save("flow", key, "s1", _arrays())
    # rewrite a valid zip whose arrays no longer match the stored checksum (silent bit rot)
    with np.load(p) as z:
        items = {n: z[n] for n in z.files}
    items["flow"] = items["flow"] + 1
    with open(p, "wb") as fh:
        np.savez(fh, **items)
    with caplog.at_level(logging.WARNING, logger="mekit.preprocess.cache"):
        assert cache.load("flow", key, "s1") is None
    assert "checksum mismatch" in caplog.text


def test_entry_of_another_sample_is_rejected(cache):
    key = param_key("flow", {})
    p1 = cache.save("flow", key, "s1", _arrays())
    p2 = cache.path("flow", key, "s2")
    p2.write_bytes(p1.read_bytes())  # a misplaced file
    assert cache.load("flow", key, "s2") is None
    assert cache.load("flow", key, "s1") is not None


def test_failed_write_leaves_old_entry_and_no_temp_file(cache, monkeypatch):
    key = param_key("flow", {})
    cache.save("flow", key, "s1", _arrays(), {"v": 1})

    def boom(fh, **arrays):
        fh.write(b"partial bytes")
        raise KeyboardInterrupt  # killed half-way through writing

    monkeypatch.setattr(cachemod.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.save("flow", key, "s1", {"flow": np.zeros(3)}, {"v": 2})
    monkeypatch.undo()
    arrays, meta = cache.load("flow", key, "s1")
    assert meta["v"] == 1 and arrays["flow"].shape == (2, 3, 4)
    assert [f.name for f in cache.path("flow", key, "s1").parent.iterdir()] == [sample_filename("s1")]


def test_disabled_cache_never_hits(tmp_path):
    c = Cache(tmp_path / "off", enabled=False)
    assert c.save("flow", "k", "s1", _arrays()) is None
    assert c.load("flow", "k", "s1") is None
    assert not (tmp_path / "off").exists()


def test_default_root_is_under_mekit_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path / "mc"))
    assert Cache().root == tmp_path / "mc" / "preprocess"


def test_clear_and_entries(cache):
    cache.save("flow", "k1", "a", _arrays())
    cache.save("flow", "k2", "b", _arrays())
    cache.save("align", "k3", "a", {})
    assert len(cache.entries("flow")) == 2
    cache.clear("flow")
    assert cache.entries("flow") == [] and len(cache.entries("align")) == 1
