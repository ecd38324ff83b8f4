"""HTTPS: `qrisk run --tls-certfile --tls-keyfile` with a self-signed certificate made here."""
from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from qrisk.settings import Settings
from tests.conftest import Server, golden


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if not shutil.which("openssl"):
            pytest.fail("making a test certificate needs the cryptography package or openssl; install one (CI must not skip this)")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o600)
    return cert, key


def test_https_with_a_configured_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    server = Server(tmp_path / "data", tls=(cert, key)).start()
    try:
        assert server.url.startswith("https://")
        resp = server.post("/v1/events", json=golden("enterprise.registered"))  # verified against the certificate
        assert resp.status_code == 200, resp.text
        assert server.get("/v1/enterprises/E-330110-001").json()["profile"]["town"] == "良渚街道"
        with pytest.raises(httpx.ConnectError):  # not trusted by the system store
            httpx.get(server.url + "/healthz", timeout=10)
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets nowhere
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=10).raise_for_status()
        ctx = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(server.url + "/healthz", verify=ctx, timeout=10).json()["status"] == "ok"
    finally:
        server.stop()


def test_tls_needs_both_files(tmp_path):
    out = subprocess.run(["python", "-m", "qrisk", "run", "--data-dir", str(tmp_path / "d"), "--tls-certfile", str(tmp_path / "c.pem")],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 2 and "--tls-keyfile" in out.stderr


def test_tls_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QRISK_TLS_CERTFILE", str(tmp_path / "c.pem"))
    monkeypatch.setenv("QRISK_TLS_KEYFILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("QRISK_API_KEY", "qrisk_000000000000_" + "x" * 43)
    settings = Settings()
    assert settings.tls_certfile == tmp_path / "c.pem" and settings.tls_keyfile == tmp_path / "k.pem"
    assert "x" * 43 not in repr(settings)  # the client key is a secret
