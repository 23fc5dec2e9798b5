#!/usr/bin/env python3
"""Makes a throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate (mTLS), and an unrelated CA with a client certificate of its
own (what a server must refuse).

Usage: pki.py OUT_DIR [ecdsa|rsa|ed25519]

Writes ca.pem, server.pem, server.key, client.pem, client.key, other-ca.pem,
other-client.pem and other-client.key (keys unencrypted PKCS#8) into OUT_DIR.
"""

import ipaddress
import os
import sys
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def new_key(kind):
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind}")


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, key, issuer, issuer_key, ca=False, server=False, client=False):
    now = datetime.now(timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algorithm)


def write(out, filename, data):
    with open(os.path.join(out, filename), "wb") as f:
        f.write(data)


def write_key(out, filename, key):
    write(out, filename, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def write_cert(out, filename, cert):
    write(out, filename, cert.public_bytes(serialization.Encoding.PEM))


def main():
    out = sys.argv[1]
    kind = sys.argv[2] if len(sys.argv) > 2 else "ecdsa"
    os.makedirs(out, exist_ok=True)
    for prefix in ("", "other-"):
        ca_key = new_key(kind)
        ca = certificate(f"{prefix}test CA", ca_key, f"{prefix}test CA", ca_key, ca=True)
        write_cert(out, f"{prefix}ca.pem", ca)
        client_key = new_key(kind)
        write_key(out, f"{prefix}client.key", client_key)
        write_cert(out, f"{prefix}client.pem",
                   certificate(f"{prefix}device-1", client_key, f"{prefix}test CA", ca_key,
                               client=True))
        if prefix == "":
            server_key = new_key(kind)
            write_key(out, "server.key", server_key)
            write_cert(out, "server.pem",
                       certificate("localhost", server_key, "test CA", ca_key, server=True))


if __name__ == "__main__":
    main()
