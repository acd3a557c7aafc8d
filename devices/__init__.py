"""Devices: the MQTT wire (topics, payloads), its translation, and the ingest worker."""
