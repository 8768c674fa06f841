"""The one epoch loop (mekit.engine.loop.run_epochs): early stopping restores the best epoch's
weights, a fit killed part-way resumes from its checkpoint to the uninterrupted result, and every
neural trainer (classification, per-frame intensity, still-image ratings) emits its epoch events
through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mekit import events
from mekit.engine import loop
from mekit.engine.loop import Batch, minibatches, run_epochs, subject_val_split
from mekit.engine.trainer import NeuralModel, Runtime, TrainConfig

FAST = {"epochs": 2, "batch_size": 12, "lr": 3e-3, "selection": "fixed", "augment": {"affine": 0.0}}


class Killed(BaseException):
    """A kill part-way through a fit (not an Exception: event listeners' errors are swallowed)."""


def _kill_at(epoch: int):
    """A listener that kills the fit when epoch ``epoch`` (1-based) reports, before its checkpoint."""

    def listener(e: events.Event) -> None:
        if e.kind == "epoch" and e["epoch"] == epoch:
            raise Killed

    return listener


# -- the loop on its own ----------------------------------------------------------------------------
def _linear_fit(cfg: TrainConfig, metrics: list[float] | None, maximize: bool = True, checkpoint=None):
    """A 2-parameter model trained by run_epochs with a scripted validation metric; returns the
    result, the model and the weights seen at each validation."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    x = torch.linspace(-1, 1, 16)[:, None]
    y = 3 * x + 1
    seen: list[dict[str, torch.Tensor]] = []

    def batches(epoch, gen):
        order = torch.randperm(len(x), generator=gen)
        for idx in minibatches(order, 4):
            yield Batch(x[idx], y[idx], len(idx))

    def validate(m):
        seen.append({k: v.clone() for k, v in m.state_dict().items()})
        return metrics[len(seen) - 1]

    with Runtime({"device": "cpu"}, four_d_input=False) as rt:
        res = run_epochs(model, cfg, rt, seed=0, batches=batches,
                         loss=lambda out, b: torch.nn.functional.mse_loss(out.float(), b.target),
                         validate=validate if metrics is not None else None, metric="val_score",
                         maximize=maximize, checkpoint=checkpoint)
    return res, model, seen


# a tie is no improvement; a better value after the patience ran out is never reached
@pytest.mark.parametrize("maximize,metrics,best", [(True, [0.2, 0.5, 0.4, 0.3, 0.5, 0.9, 0.1], 1),
                                                   (False, [0.9, 0.7, 0.2, 0.2, 0.3, 0.25, 0.1], 2)])
def test_early_stopping_restores_the_best_epochs_weights(maximize, metrics, best):
    cfg = TrainConfig(epochs=7, lr=0.05, patience=3)
    res, model, seen = _linear_fit(cfg, metrics, maximize)
    # patience 3: three epochs without a strict improvement after the best one, then stop
    assert [h["epoch"] for h in res.history] == list(range(best + 4))
    assert res.stopped_early and res.best_epoch == best and res.best == metrics[best]
    assert [h["val_score"] for h in res.history] == metrics[:best + 4]
    final = model.state_dict()
    for k in final:
        assert torch.equal(final[k], seen[best][k]), k
        assert not torch.equal(final[k], seen[-1][k]), k  # training did move on after the best epoch


def test_without_validation_the_whole_budget_runs_and_nothing_is_selected():
    res, _, _ = _linear_fit(TrainConfig(epochs=5, lr=0.05, warmup_epochs=2, schedule="cosine", patience=1), None)
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3, 4]
    assert not res.selected and res.best is None and not res.stopped_early
    assert [h["lr"] for h in res.history] == [TrainConfig(epochs=5, lr=0.05, warmup_epochs=2,
                                                          schedule="cosine").lr_at(e) for e in range(5)]
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_a_stopped_fit_resumed_from_its_checkpoint_stops_the_same(tmp_path):
    cfg = TrainConfig(epochs=8, lr=0.05, patience=2)
    metrics = [0.5, 0.9, 0.1, 0.1, 0.95, 0.99, 0.99, 0.99]
    res, model, _ = _linear_fit(cfg, metrics, checkpoint=tmp_path / "state.pt")
    assert res.stopped_early and len(res.history) == 4
    again, model2, seen = _linear_fit(cfg, metrics, checkpoint=tmp_path / "state.pt")
    assert not seen  # no epoch trained or validated again
    assert again.history == res.history and again.best_epoch == 1 and again.stopped_early
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k]), k


def test_trainer_state_may_not_use_the_loops_keys(tmp_path):
    model = torch.nn.Linear(1, 1)
    with Runtime({"device": "cpu"}, four_d_input=False) as rt, pytest.raises(ValueError, match="loop's own"):
        run_epochs(model, TrainConfig(epochs=1), rt, seed=0,
                   batches=lambda e, g: [Batch(torch.ones(2, 1), torch.ones(2, 1), 2)],
                   loss=lambda out, b: ((out - b.target) ** 2).mean(), checkpoint=tmp_path / "s.pt",
                   state=(lambda: {"epoch": 3}, lambda s: None))


def test_the_inner_split_takes_whole_training_subjects():
    groups = np.repeat([f"s{i}" for i in range(10)], 3)
    val = subject_val_split(groups, 0.2, seed=4)
    assert len(np.unique(groups[val])) == 2
    assert not set(groups[val]) & set(groups[~val])
    assert np.array_equal(val, subject_val_split(groups, 0.2, seed=4))
    assert not subject_val_split(groups[:6], 0.5, seed=0).any()  # two subjects: no split


# -- resume, through the trainers -----------------------------------------------------------------
def _cls_data(n=36, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b", "c"] * (n // 3))
    X = rng.normal(0, 0.3, (n, 3, 28, 28)).astype(np.float32)
    for i, lab in enumerate(y):
        X[i, 0, 4 + 8 * "abc".index(lab): 10 + 8 * "abc".index(lab), 4:24] += 1.5
    return X, y, np.array([f"s{i % 6}" for i in range(n)])


def test_a_killed_classification_fit_resumes_to_the_uninterrupted_result(tmp_path):
    X, y, g = _cls_data()
    params = {**FAST, "epochs": 5, "selection": "inner_val", "patience": 5, "schedule": "cosine",
              "augment": {"affine": 0.05}}
    whole = NeuralModel("ststnet", params, seed=2).fit(X, y, g)
    with events.listen(_kill_at(4)), pytest.raises(Killed):
        NeuralModel("ststnet", params, seed=2, checkpoint_dir=tmp_path).fit(X, y, g)
    got: list[events.Event] = []
    with events.listen(got.append):
        resumed = NeuralModel("ststnet", params, seed=2, checkpoint_dir=tmp_path).fit(X, y, g)
    assert [e["epoch"] for e in got if e.kind == "epoch"] == [4, 5]  # epochs 1-3 were read back
    assert resumed.history_ == whole.history_ and resumed.selection_ == whole.selection_
    assert resumed.epoch_class_counts_ == whole.epoch_class_counts_
    assert np.array_equal(resumed.predict_proba(X), whole.predict_proba(X))


def _clips(kind: str, n=6, t=9, seed=0):
    from mekit.intensity.models import ClipInput

    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        if kind == "flow":
            clips.append(ClipInput(f"c{i}", np.arange(t), stack=rng.normal(0, 1, (t, 3, 28, 28)).astype(np.float16)))
        else:
            clips.append(ClipInput(f"c{i}", np.arange(t), images=rng.integers(0, 255, (t, 16, 16, 3), np.uint8)))
    return clips, [np.sin(np.linspace(0, np.pi, t)) for _ in clips], np.array([f"s{i}" for i in range(n)])


@pytest.mark.parametrize("model", ["ststnet", "cnn_lstm"])
def test_a_killed_intensity_fit_resumes_to_the_uninterrupted_result(model, tmp_path):
    """IntensityNet gains checkpoints through the loop; a sequence model's jittered frame
    positions (a NumPy generator of its own) resume with it."""
    from mekit.intensity.models import IntensityNet, IntensitySettings

    clips, targets, groups = _clips("flow" if model == "ststnet" else "images")
    s = IntensitySettings(seq_len=4, image_size=16)
    params = {**FAST, "epochs": 4, "batch_size": 4, "selection": "inner_val", "val_fraction": 0.34,
              "patience": 5, "augment": {"affine": 0.05}}

    def fit(ckpt=None):
        return IntensityNet(model, params, s, seed=1, compute={"device": "cpu"}, checkpoint_dir=ckpt).fit(
            clips, targets, groups)

    whole = fit()
    with events.listen(_kill_at(3)), pytest.raises(Killed):
        fit(tmp_path)
    assert (tmp_path / "train_state.pt").is_file()
    resumed = fit(tmp_path)
    assert [h["epoch"] for h in resumed.history_] == [0, 1, 2, 3]
    assert resumed.history_ == whole.history_ and resumed.selection_ == whole.selection_
    for c in clips:
        assert np.array_equal(resumed.predict_clip(c), whole.predict_clip(c))


# -- events -----------------------------------------------------------------------------------------
class _Spy:
    """Stands in for mekit.events inside the loop module: records what the loop emits and
    passes it on."""

    def __init__(self):
        self.sent: list[dict] = []

    def emit(self, kind, **data):
        self.sent.append({"kind": kind, **data})
        events.emit(kind, **data)


def _epoch_events(monkeypatch, fit):
    spy = _Spy()
    monkeypatch.setattr(loop, "events", spy)
    got: list[events.Event] = []
    with events.listen(got.append):
        model = fit()
    ep = [dict(e.data) for e in got if e.kind == "epoch"]
    assert ep and ep == [{k: v for k, v in s.items() if k != "kind"} for s in spy.sent]  # all from the loop
    for e, h in zip(ep, model.history_, strict=True):
        assert e["stage"] == "train" and e["epoch"] == h["epoch"] + 1 and e["epochs"] == model.cfg.epochs
        assert e["loss"] == h["train_loss"] and e["lr"] == h["lr"] and e["val"] == h.get(e["metric"])
    return ep


def test_classification_emits_its_epochs_through_the_loop(monkeypatch):
    X, y, g = _cls_data()
    ep = _epoch_events(monkeypatch, lambda: NeuralModel("ststnet", {**FAST, "selection": "inner_val"},
                                                        seed=0).fit(X, y, g))
    assert [(e["epoch"], e["epochs"], e["metric"]) for e in ep] == [(1, 2, "val_uf1"), (2, 2, "val_uf1")]
    assert all(e["val"] is not None for e in ep)


def test_intensity_emits_its_epochs_through_the_loop(monkeypatch):
    from mekit.intensity.models import IntensityNet, IntensitySettings

    clips, targets, groups = _clips("flow")
    ep = _epoch_events(monkeypatch, lambda: IntensityNet("ststnet", {**FAST, "batch_size": 8}, IntensitySettings(),
                                                         seed=0).fit(clips, targets, groups))
    assert [(e["epoch"], e["epochs"], e["metric"], e["val"]) for e in ep] == [(1, 2, "val_mae", None),
                                                                             (2, 2, "val_mae", None)]


def test_still_regressor_emits_its_epochs_through_the_loop(monkeypatch):
    from mekit.intensity.models import IntensitySettings, StillRegressorNet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (18, 16, 16, 3), np.uint8)
    ep = _epoch_events(monkeypatch, lambda: StillRegressorNet(
        "compact_cnn", {**FAST, "selection": "inner_val"}, IntensitySettings(image_size=16)).fit(
        images, rng.uniform(0, 1, 18), np.repeat(["a", "b", "c"], 6)))
    assert [(e["epoch"], e["metric"]) for e in ep] == [(1, "val_mae"), (2, "val_mae")]
    assert all(e["val"] is not None for e in ep)
