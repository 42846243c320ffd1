"""C2PA Content Credentials for tests: a certificate chain made here (a CA and its signer) and files signed with it.

c2pa checks the signer's certificate profile: an end-entity certificate (not a CA) with the digitalSignature key
usage and an extended key usage C2PA accepts (emailProtection here), issued by a CA; the chain is sent leaf
first. No timestamp authority is asked, so nothing leaves the machine.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_USAGE = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False)


@dataclass(frozen=True)
class Credentials:
    """A signer's key and chain (PEM, leaf first) and the CA that issued it (the trust anchor)."""

    key: bytes
    chain: bytes
    anchor: str


def _name(common: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _certificate(subject: x509.Name, issuer: x509.Name, public, signing_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **_USAGE), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def make_credentials(org: str = "Test Studio", common: str = "test signer") -> Credentials:
    """A fresh P-256 CA and a signer certificate it issued to `common` at `org`."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("streamdet test CA", "streamdet tests")
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    leaf = _certificate(_name(common, org), ca_name, key.public_key(), ca_key, ca=False)
    pem = serialization.Encoding.PEM
    return Credentials(
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        chain=leaf.public_bytes(pem) + ca.public_bytes(pem),
        anchor=ca.public_bytes(pem).decode(),
    )


def sign(source: Path, dest: Path, credentials: Credentials, generator: str, actions: list[dict]) -> Path:
    """Write `dest`: `source` with a C2PA manifest by `generator` ("name version") holding `actions`, signed ES256."""
    name, version = generator.split(" ", 1)
    manifest = {"claim_generator_info": [{"name": name, "version": version}], "title": source.name,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, credentials.chain, credentials.key, None))
    with signer, c2pa.Builder(manifest) as builder:
        builder.sign_file(source, dest, signer)
    return dest
