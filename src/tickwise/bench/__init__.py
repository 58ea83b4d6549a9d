"""Benchmark implementations behind `tickwise bench`."""
