"""The broker's TLS listener: a device that trusts the deployment's CA connects and publishes;
one that trusts another CA refuses the broker; the center's own clients connect with
YIWANG_MQTT_TLS_CA."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devices.broker import BrokerLogin
from dispatch.broker_accounts import BrokerAccounts
from harness.daemons import ManagedMosquitto, TlsFiles
from tests.integration.helpers import wait_until


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(
    folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> TlsFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "server.crt", folder / "server.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key, ca_cert = make_ca(folder, "yiwang-test-ca")
    other_ca, _, _ = make_ca(folder, "someone-else")
    broker = ManagedMosquitto(folder / "mosquitto", tls=make_server_cert(folder, ca_key, ca_cert))
    broker.start()
    yield broker, ca, other_ca
    broker.stop()


def device_client(client_id: str, login: tuple[str, str], ca: Path) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(*login)
    client.tls_set(ca_certs=str(ca))
    return client


def test_device_connects_over_tls_with_the_ca_and_refuses_another(tls_broker, prefix) -> None:
    broker, ca, other_ca = tls_broker
    assert broker.tls_port is not None
    # The center's account manager itself speaks TLS, as YIWANG_MQTT_TLS_CA makes it.
    admin = BrokerLogin(
        "127.0.0.1", broker.tls_port, broker.admin_username, broker.admin_password, str(ca)
    )
    device = f"BC-{prefix}"
    with BrokerAccounts(admin, prefix) as accounts:
        accounts.issue_device(device, "zhang3", device, "s3cret-for-tls")
    login = (device, "s3cret-for-tls")

    client = device_client(f"{prefix}-tls", login, ca)
    connected: list[bool] = []
    client.on_connect = lambda c, u, f, reason, p: connected.append(not reason.is_failure)
    client.connect("127.0.0.1", broker.tls_port)
    client.loop_start()
    wait_until(lambda: connected, 10, "a CONNACK over TLS")
    assert connected == [True]
    info = client.publish(f"{prefix}/zhang3/{device}", b'{"_type":"lwt"}', qos=1)
    info.wait_for_publish(10)
    assert info.is_published()
    client.disconnect()
    client.loop_stop()

    stranger = device_client(f"{prefix}-tls-wrong-ca", login, other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.connect("127.0.0.1", broker.tls_port)
