"""Roles the core and pipelines depend on, as typing.Protocol classes."""
