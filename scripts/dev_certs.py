"""Make a private CA and one server certificate signed by it, for TLS between the services.

    python scripts/dev_certs.py DIR [HOST ...]

writes DIR/ca.pem (clients verify with it: CATALOG_TLS_CA_FILE), DIR/server.pem and
DIR/server-key.pem (every listener: CATALOG_TLS_CERT_FILE, CATALOG_TLS_KEY_FILE). The server
certificate names localhost, 127.0.0.1 and ::1 and every HOST given (e.g. the compose service
names), since a client checks the name it dials. The CA's key is not kept: nothing more can be
signed with it. Good for a trial or one host; a deployment uses its own CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_VALID_DAYS = 365


@dataclass(frozen=True)
class DevCerts:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _builder(
    subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
    )


def make_dev_certs(folder: Path, hosts: tuple[str, ...] = ()) -> DevCerts:
    """Write the CA and the server pair into `folder` (made if missing; the key mode 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("Catalog Agents dev CA", "Catalog Agents dev CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys((*DEFAULT_HOSTS, *hosts)))
    cert = (
        _builder("catalog-agents", "Catalog Agents dev CA", key.public_key())
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = DevCerts(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    certs.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key_file.touch(mode=0o600)
    certs.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certs


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    certs = make_dev_certs(Path(argv[0]), tuple(argv[1:]))
    print(f"CATALOG_TLS_CA_FILE={certs.ca_file.resolve()}")
    print(f"CATALOG_TLS_CERT_FILE={certs.cert_file.resolve()}")
    print(f"CATALOG_TLS_KEY_FILE={certs.key_file.resolve()}")


if __name__ == "__main__":
    main(sys.argv[1:])
