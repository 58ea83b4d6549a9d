"""Composition root: settings -> adapters -> pipelines. The only place that wires adapters in."""
