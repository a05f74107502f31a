"""Test certificates made with the openssl command: a CA, a server certificate for
host.example.test signed by it, and a client certificate signed by it (for
smtpd_tls_ask_ccert and permit_tls_clientcerts).

    certs = make_certs(tmp_path)      # or the session-wide tls_certs fixture below
    certs.server_cert, certs.server_key, certs.server_chain (key + cert + CA in one file),
    certs.ca_cert, certs.client_cert, certs.client_key,
    certs.client_fingerprint("sha256") -> "AB:CD:..." as Postfix prints it
"""

import os
import subprocess

import pytest

SERVER_NAME = "host.example.test"
CLIENT_NAME = "client.example.test"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Certs:
    """Paths of the files make_certs() wrote into `dir`."""

    def __init__(self, directory):
        self.dir = directory
        for attr, name in (("ca_cert", "ca.pem"), ("server_cert", "server.pem"),
                           ("server_key", "server.key"), ("server_chain", "server-chain.pem"),
                           ("client_cert", "client.pem"), ("client_key", "client.key")):
            setattr(self, attr, os.path.join(directory, name))

    def client_fingerprint(self, digest="sha256"):
        out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-" + digest,
                              "-in", self.client_cert], check=True, capture_output=True,
                             text=True).stdout
        return out.strip().split("=", 1)[1]


def _signed(name, cn, ca, cwd, ext):
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
             "-subj", "/CN=" + cn, "-out", name + ".csr", cwd=cwd)
    with open(os.path.join(cwd, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", name + ".ext",
             "-out", name + ".pem", cwd=cwd)


def make_certs(directory, server_name=SERVER_NAME):
    """Writes the CA, server and client files into `directory` (created if missing);
    the server certificate is for `server_name`."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-subj", "/O=Postern Test/CN=Postern Test CA", "-days", "3650", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", cwd=directory)
    _signed("server", server_name, "ca", directory,
            "subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" % server_name)
    _signed("client", CLIENT_NAME, "ca", directory, "extendedKeyUsage=clientAuth\n")
    certs = Certs(directory)
    with open(certs.server_chain, "w") as out:
        for part in (certs.server_key, certs.server_cert, certs.ca_cert):
            with open(part) as f:
                out.write(f.read())
    for name in ("server.key", "client.key", "ca.key"):
        os.chmod(os.path.join(directory, name), 0o644)  # daemons may run unprivileged
    return certs


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tlscerts"))
