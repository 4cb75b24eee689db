"""TLS for the reference queue server: HTTPS, and mutual TLS when a client CA is given."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A client must finish the TLS handshake within this many seconds.
HANDSHAKE_TIMEOUT_S = 10.0


class TlsConfigError(ValueError):
    """A certificate, key or CA file the server cannot load; the message names the file."""


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key (PEM), and the CA its clients must be signed by."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def context(self) -> ssl.SSLContext:
        """A server context (TLS 1.2 or later); client certificates required if mutual."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"cannot load the server certificate {self.cert} with key {self.key}: {exc}"
            ) from exc
        if self.client_ca is not None:
            try:
                ctx.load_verify_locations(cafile=str(self.client_ca))
            except (OSError, ssl.SSLError) as exc:
                raise TlsConfigError(
                    f"cannot load the client CA bundle {self.client_ca}: {exc}"
                ) from exc
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def certificate_names(cert: dict[str, Any] | None) -> frozenset[str]:
    """The names a verified peer certificate (``SSLSocket.getpeercert()``) gives its holder:
    the subject's common names and the DNS and URI subject alternative names. A station's
    certificate must name its ``station_id`` in one of them."""
    if not cert:
        return frozenset()
    names = {
        str(value) for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
    }
    names |= {
        str(value) for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "URI")
    }
    return frozenset(names)
