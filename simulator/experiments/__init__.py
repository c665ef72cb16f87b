"""Experiments: everything that composes many runs of the model.

One run is ``simulator.engine.run(scenario, strategy, seed)``; this layer builds on it:
replications and arms (``runner``) and their outputs (``outputs``), paired comparisons
(``compare``), content-addressed cells (``cells``) run on a local pool or a Dask cluster
(``backends``), sweeps (``sweep``) and regression checks (``regression``). It imports
the model, never the command line.
"""
