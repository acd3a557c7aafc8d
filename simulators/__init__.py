"""Simulated devices. They speak only the MQTT wire protocol and never import `dispatch`."""
