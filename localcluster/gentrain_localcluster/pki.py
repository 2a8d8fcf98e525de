"""Certificates and keys for the local control plane.

One self-signed CA signs the API server's serving certificate and every client
certificate (admin, controller-manager, scheduler, node agent); a separate RSA key pair
signs service-account tokens so that TokenRequest and projected tokens work.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate's subject: CN is the user name, O the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


CLIENTS = (
    ClientIdentity("admin", "kubernetes-admin", ("system:masters",)),
    ClientIdentity("controller-manager", "system:kube-controller-manager"),
    ClientIdentity("scheduler", "system:kube-scheduler"),
    ClientIdentity("apiserver-etcd-client", "kube-apiserver-etcd-client"),
)


def node_identity(node_name: str) -> ClientIdentity:
    # The Node authorizer and NodeRestriction admission recognise kubelets by this name.
    return ClientIdentity(f"node-{node_name}", f"system:node:{node_name}", ("system:nodes",))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


class CertificateAuthority:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert_path = directory / "ca.crt"
        self.key_path = directory / "ca.key"

    def ensure(self) -> None:
        """Creates the CA, the service-account key pair and the client certificates once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            now = datetime.datetime.now(datetime.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name("gentrain-local-ca"))
                .issuer_name(_name("gentrain-local-ca"))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + _VALIDITY * 10)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
            _write_key(self.key_path, key)
            _write_cert(self.cert_path, cert)
        sa_key = self.directory / "service-account.key"
        if not sa_key.exists():
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_key(sa_key, rsa_key)
            (self.directory / "service-account.pub").write_bytes(
                rsa_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        for client in CLIENTS:
            self.ensure_client(client)

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def _issue(
        self,
        stem: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        san: list[x509.GeneralName] | None = None,
    ) -> None:
        ca_cert, ca_key = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        _write_key(self.directory / f"{stem}.key", key)
        _write_cert(self.directory / f"{stem}.crt", builder.sign(ca_key, hashes.SHA256()))

    def ensure_client(self, client: ClientIdentity) -> tuple[Path, Path]:
        cert, key = (
            self.directory / f"{client.file_stem}.crt",
            self.directory / f"{client.file_stem}.key",
        )
        if not cert.exists():
            self._issue(
                client.file_stem, _name(client.user, client.groups), ExtendedKeyUsageOID.CLIENT_AUTH
            )
        return cert, key

    def ensure_serving(self, stem: str, hosts: list[str]) -> tuple[Path, Path]:
        """A serving certificate valid for the given DNS names and IP addresses.

        Reissued when the wanted names change (for example a new pod-network address).
        """
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        if cert_path.exists():
            existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
            current = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            if set(current.value) == set(names):
                return cert_path, key_path
        self._issue(stem, _name(stem), ExtendedKeyUsageOID.SERVER_AUTH, names)
        return cert_path, key_path
