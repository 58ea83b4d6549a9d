"""Pure computation shared by both pipelines: no I/O, no configuration."""
