"""Compute executors: Dask distributed (a local process cluster or a ``tcp://`` scheduler) and the
in-process one with the same contract (``ports.compute.ComputeExecutor``)."""
