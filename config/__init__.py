"""Default settings shipped with tracer (``defaults.toml``); see ``tracer.settings``."""
