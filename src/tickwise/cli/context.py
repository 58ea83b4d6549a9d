"""State shared by CLI commands: global options and lazily loaded settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from tickwise.bootstrap.observability import setup_logging
from tickwise.bootstrap.world import world_settings
from tickwise.config import Settings, load_settings


@dataclass
class CliState:
    debug: bool = False
    environment: str | None = None
    log_json: bool | None = None  # --log-json (None: system.log_json decides)
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Load and validate the configuration once (raises ConfigError, exit code 2)."""
        if self._settings is None:
            # Each market keeps its own embedded data directory (docs/going-live.md, Separate worlds).
            self._settings = world_settings(load_settings(environment=self.environment))
            setup_logging(self._settings, debug=self.debug, log_json=self.log_json)
        return self._settings

    def reload_settings(self) -> Settings:
        """Load the configuration again (SIGHUP in ``tickwise live``); the first load is kept."""
        return world_settings(load_settings(environment=self.environment))


state = CliState()
