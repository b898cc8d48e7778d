"""scripts/dependency_audit.py: the ignore list is one file with a reason per advisory, and
"could not ask" (exit 3) is never reported as "nothing found" (0) nor as "vulnerable" (1)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "dependency_audit.py"


def audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dependency_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_ignored_advisory_says_why_it_does_not_reach_this_code(tmp_path: Path) -> None:
    audit = audit_module()
    ignores = audit.read_ignores(ROOT / ".ci" / "audit-ignore.txt")
    assert ignores and all(len(reason) >= 20 for reason in ignores.values())
    bare = tmp_path / "ignore.txt"
    bare.write_text("# a comment\nGHSA-pq67-6m6q-mj2v\n")
    with pytest.raises(SystemExit, match=r"ignore.txt:2: expected 'ADVISORY-ID  why"):
        audit.read_ignores(bare)


def test_an_advisory_is_vulnerable_and_an_unanswered_dependency_is_unreachable() -> None:
    audit = audit_module()
    # pip-audit's JSON report: a dependency with vulns, one it could not look up, and our own
    vulnerable = {"dependencies": [
        {"name": "aiohttp", "version": "3.14.0", "vulns": [
            {"id": "GHSA-aaaa-bbbb-cccc", "fix_versions": ["3.14.3"], "aliases": ["CVE-2026-0001"]}]},
        {"name": "idna", "version": "3.4", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        {"name": "screenshot-service-client", "version": "0.1.0", "skip_reason": "not on PyPI"},
    ]}
    code, lines = audit.classify(vulnerable, "floors")
    assert code == audit.VULNERABLE and "GHSA-aaaa-bbbb-cccc" in lines[0] and "3.14.3" in lines[0]
    vulnerable["dependencies"][0]["vulns"] = []
    code, lines = audit.classify(vulnerable, "floors")
    assert code == audit.UNREACHABLE and "1 of 2 dependencies" in lines[0]
    del vulnerable["dependencies"][1]
    assert audit.classify(vulnerable, "floors")[0] == audit.OK  # our own distributions are not looked up


def test_an_advisory_service_out_of_reach_fails_as_unreachable() -> None:
    with socket.socket() as closed:  # a port nothing listens on: the proxy refuses every connection
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {**os.environ, "HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "floors"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "UNREACHABLE (setup.cfg floors)" in done.stderr and "VULNERABLE" not in done.stderr + done.stdout
