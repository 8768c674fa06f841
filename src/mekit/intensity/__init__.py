"""Continuous emotion intensity: regression targets, their metrics and curve plots.

A micro-expression rises from the onset to the apex and fades to the offset. mekit treats
its intensity at two levels:

- per frame, a curve over the clip (:mod:`mekit.intensity.targets`: timing curves built from
  the annotated onset, apex and offset, or the synthetic corpus's ground-truth curve);
- per clip, one number (the strongest FACS intensity letter of the clip's action units, or a
  rating column rescaled to 0-1).

:mod:`mekit.intensity.metrics` scores predictions against either (MAE, RMSE, Pearson,
Spearman, Lin's CCC, ICC(3,1), and how close the predicted peak falls to the annotated apex);
:mod:`mekit.intensity.plots` draws predicted curves against their targets for reports.

Everything here is a pure function of arrays and tables; the models that produce the
predictions (an intensity head on any registered model) live in :mod:`mekit.models`.
Import the submodules directly; this package imports nothing heavy on its own.
"""
