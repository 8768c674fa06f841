"""Preprocessing stages between a SampleTable and the models: face crop and alignment
(``face``), apex spotting (``apex``), optical flow and strain (``flow``), frame sampling and
temporal interpolation (``temporal``), Eulerian motion magnification (``magnify``), and the
on-disk cache keyed by sample id (``cache``).

Nothing is imported here, so ``import mekit.preprocess`` stays cheap; import the stage module
you need.
"""
