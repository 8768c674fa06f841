"""The event protocol: listeners per context, a broken listener never stops the work."""

from __future__ import annotations

import threading

import pytest

from mekit import events


def test_listeners_receive_events_only_inside_their_block():
    got = []
    events.emit("message", text="nobody listens")
    with events.listen(got.append):
        assert events.active()
        events.emit("message", text="hello")
    events.emit("message", text="after")
    assert [e["text"] for e in got] == ["hello"] and not events.active()


def test_stage_emits_start_progress_with_eta_and_end():
    got = []
    with events.listen(got.append), events.Stage("folds", total=2, seed=0) as st:
        st.advance(fold="a")
        st.advance(fold="b")
    kinds = [e.kind for e in got]
    assert kinds == ["stage_start", "progress", "progress", "stage_end"]
    assert got[1]["done"] == 1 and got[1]["eta_s"] is not None and got[2]["fold"] == "b"
    assert got[-1]["ok"] is True and got[-1]["seed"] == 0


def test_a_failing_listener_is_dropped_and_the_work_goes_on():
    got = []

    def broken(e):
        raise RuntimeError("display crashed")

    with events.listen(broken), events.listen(got.append):
        events.emit("message", text="1")
        events.emit("message", text="2")
    assert [e["text"] for e in got] == ["1", "2"]


def test_threads_do_not_see_each_others_events():
    seen = {"a": [], "b": []}

    def work(name):
        with events.listen(seen[name].append):
            for i in range(50):
                events.emit("progress", stage=name, done=i)

    ts = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert {e["stage"] for e in seen["a"]} == {"a"} and len(seen["b"]) == 50


def test_unknown_kinds_are_refused():
    with events.listen(lambda e: None), pytest.raises(ValueError):
        events.emit("bogus")
