"""RSA keys and GitHub App JWTs for tests.

Helpers only (no server): tests use them to make the App's key pair in the two
formats GitHub and patchbay accept, and to sign App JWTs the way GitHub's docs
describe, independently of patchbay's C code.

    keys = generate_rsa_keypair("/tmp/x")     # files + PEM bytes
    token = make_app_jwt(keys["pkcs1_pem"], 1234)

GitHub's App private keys are downloaded as PKCS#1 ("BEGIN RSA PRIVATE KEY");
PKCS#8 ("BEGIN PRIVATE KEY") is what most tools convert them to.  Both must work.
"""

import os
import time

import jwt  # Debian's python3-jwt (PyJWT)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_rsa_pems(bits=2048):
    """Return (pkcs1_pem, pkcs8_pem, public_pem) bytes of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pkcs1 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    pkcs8 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pkcs1, pkcs8, public


def generate_rsa_keypair(directory, bits=2048, prefix="app"):
    """Write <prefix>.pkcs1.pem, <prefix>.pkcs8.pem (mode 0600) and
    <prefix>.pub.pem into directory.  Returns a dict with the paths
    ("pkcs1", "pkcs8", "public") and the PEM bytes ("pkcs1_pem", ...)."""
    os.makedirs(directory, exist_ok=True)
    pkcs1, pkcs8, public = generate_rsa_pems(bits)
    out = {}
    for kind, data, mode in (("pkcs1", pkcs1, 0o600), ("pkcs8", pkcs8, 0o600),
                             ("public", public, 0o644)):
        name = "%s.%s.pem" % (prefix, "pub" if kind == "public" else kind)
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        out[kind] = path
        out[kind + "_pem"] = data
    return out


def public_pem_of(private_pem):
    """The SubjectPublicKeyInfo PEM of a PKCS#1 or PKCS#8 private key."""
    if isinstance(private_pem, str):
        private_pem = private_pem.encode()
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def make_app_jwt(private_pem, app_id, now=None, iat_offset=-60, exp_offset=600,
                 iss=None, omit=(), algorithm="RS256", extra=None):
    """Sign an App JWT as GitHub documents it: iat = now - 60 s,
    exp = now + 10 min, iss = App ID.  Offsets and omitted claims let
    tests build the invalid variants."""
    now = int(time.time() if now is None else now)
    claims = {"iat": now + iat_offset, "exp": now + exp_offset,
              "iss": str(app_id) if iss is None else iss}
    for k in omit:
        claims.pop(k, None)
    if extra:
        claims.update(extra)
    return jwt.encode(claims, private_pem, algorithm=algorithm)
