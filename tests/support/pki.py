"""A throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost and
client certificates naming their station (common name ``t-01``; :func:`client_for` issues
more, by CN or by SAN only), generated with ``cryptography``'s x509 builder at test time."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate that signed the server and client certificates
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # an unrelated CA (the wrong bundle)
    stranger_cert: Path  # a client certificate signed by the unrelated CA
    stranger_key: Path
    ca_key: Path  # to issue more client certificates (client_for)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ektp-station tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def _ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: bool,
    san: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(root: Path) -> Pki:
    """Write the CA, server, client and stranger certificates and keys under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("ektp test CA")
    other, other_key = _ca("some other CA")
    server, server_key = _leaf("centre", ca, ca_key, server=True)
    client, client_key = _leaf("t-01", ca, ca_key, server=False)
    stranger, stranger_key = _leaf("t-01", other, other_key, server=False)
    return Pki(
        ca=_write_cert(ca, root / "ca.pem"),
        server_cert=_write_cert(server, root / "server.pem"),
        server_key=_write_key(server_key, root / "server.key"),
        client_cert=_write_cert(client, root / "client.pem"),
        client_key=_write_key(client_key, root / "client.key"),
        other_ca=_write_cert(other, root / "other-ca.pem"),
        stranger_cert=_write_cert(stranger, root / "stranger.pem"),
        stranger_key=_write_key(stranger_key, root / "stranger.key"),
        ca_key=_write_key(ca_key, root / "ca.key"),
    )


def client_for(pki: Pki, station_id: str, *, san_only: bool = False) -> tuple[Path, Path]:
    """A client certificate (and key) from the test CA for ``station_id``: its common name,
    or with ``san_only`` an unrelated common name and the id as a DNS subject alt name."""
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key = load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    common = "print pc" if san_only else station_id
    san: list[x509.GeneralName] | None = [x509.DNSName(station_id)] if san_only else None
    cert, key = _leaf(common, ca, ca_key, server=False, san=san)
    stem = f"client-{station_id}{'-san' if san_only else ''}"
    root = pki.ca.parent
    return _write_cert(cert, root / f"{stem}.pem"), _write_key(key, root / f"{stem}.key")
