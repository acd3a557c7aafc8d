"""Yiwang's command center: the incident core, its Redis store, the API and the CLI."""
