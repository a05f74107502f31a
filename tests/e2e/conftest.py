"""Shared fixtures for Postern's end-to-end tests.

The tests run the built commands (POSTERN_BUILD, default ./build) and, for differential
checks, Debian's Postfix tools from /usr/sbin. Each test gets its own config directory.
"""
import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTERN_BUILD", TOP / "build"))


def postern(name):
    """Path of a built Postern command or daemon."""
    for sub in ("sbin", "libexec/postern"):
        p = BUILD / sub / name
        if p.exists():
            return str(p)
    raise FileNotFoundError(f"{name} is not built under {BUILD}")


def postfix(name):
    """Path of Debian's Postfix tool, the reference for differential tests."""
    return f"/usr/sbin/{name}"


def run(argv, input=None, env=None, check=False):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    full_env.pop("MAIL_CONFIG", None)
    if env:
        full_env.update(env)
    return subprocess.run(argv, input=input, capture_output=True, text=True,
                          env=full_env, check=check, timeout=120)


@pytest.fixture
def confdir(tmp_path):
    """An empty config directory with a minimal main.cf, for -c DIR."""
    d = tmp_path / "conf"
    d.mkdir()
    (d / "main.cf").write_text("")
    return d
