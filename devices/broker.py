"""Where and as whom an MQTT client of the center connects: address, account and TLS.

The shipped brokers refuse anonymous clients, so every client the center runs (ingest, order
delivery, the broker-account manager) is given one of these and applies it before connecting.
"""

from __future__ import annotations

from dataclasses import dataclass

import paho.mqtt.client as mqtt


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    # A CA certificate file: connect over TLS and accept only a broker certificate it signed.
    tls_ca: str | None = None

    def apply(self, client: mqtt.Client) -> None:
        """Set the account and, with a CA, TLS on a client that has not connected yet."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls_ca:
            client.tls_set(ca_certs=self.tls_ca)

    def __repr__(self) -> str:
        # Never print the password into a log line.
        tls = " tls" if self.tls_ca else ""
        return f"BrokerLogin({self.username or 'anonymous'}@{self.host}:{self.port}{tls})"
