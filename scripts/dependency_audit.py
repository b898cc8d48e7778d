"""The dependency audit (scripts/audit, run by .ci/run): known advisories against what we ship.

Two sets are checked with pip-audit against PyPI's advisory data (``--vulnerability-service
pypi``): the installed environment (every dependency at the version installed, the
transitive ones included: pyppeteer's urllib3, websockets and pyee) and the floors
(``scripts/floors_smoke.py constraints``: the lowest versions setup.cfg admits, so a floor
below a security fix fails here).  Advisories that do not reach this code are listed, each
with its reason, in ``.ci/audit-ignore.txt``, the one list of them.

Three outcomes, three exit codes, never confused:
  0  audited: no advisory outside the ignore list;
  1  VULNERABLE: an advisory applies (the package, version, id and fixed versions are printed);
  3  UNREACHABLE: the advisory service could not be asked, or answered for only some of the
     dependencies: nothing is known, which is not the same as "nothing found";
  2  the audit itself is broken (the ignore list, pip-audit missing).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".ci" / "audit-ignore.txt"
# Built from this checkout, on no index: nothing to ask the advisory service about.
LOCAL = {"screenshot-service", "screenshot-service-client"}
OK, VULNERABLE, BROKEN, UNREACHABLE = 0, 1, 2, 3
ADVISORY_ID = re.compile(r"^(GHSA(-[0-9a-z]{4}){3}|PYSEC-\d{4}-\d+|CVE-\d{4}-\d+)$")
UNREACHABLE_SIGNS = ("connection", "timed out", "timeout", "max retries", "name resolution", "proxy",
                     "ssl", "service error", "temporary failure", "unreachable", "network")


def read_ignores(path: Path) -> dict[str, str]:
    """``ID  reason`` per line (``#`` comments); an entry without a reason is refused."""
    ignores: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        advisory, _, reason = text.partition(" ")
        if not ADVISORY_ID.match(advisory) or len(reason.strip()) < 20:
            raise SystemExit(f"audit: {path}:{number}: expected 'ADVISORY-ID  why it does not reach this code', "
                             f"got {line!r}")
        ignores[advisory] = reason.strip()
    return ignores


def classify(report: dict[str, object], what: str) -> tuple[int, list[str]]:
    """The outcome of one pip-audit JSON report, and the lines that say why."""
    found, unaudited, audited = [], [], 0
    for dep in report.get("dependencies", []):  # type: ignore[attr-defined]
        name = str(dep.get("name", "")).lower()
        if name in LOCAL:
            continue
        if "skip_reason" in dep:
            unaudited.append(f"{name}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            found.append(f"{name} {dep.get('version')}: {vuln.get('id')} ({aliases}) fixed in {fixes}")
    if found:
        return VULNERABLE, [f"VULNERABLE ({what}): {line}" for line in found]
    if unaudited:
        head = (f"UNREACHABLE ({what}): {len(unaudited)} of {len(unaudited) + audited} dependencies could not be "
                "checked against the advisory service; nothing is known about them")
        return UNREACHABLE, [head, *(f"  {line}" for line in unaudited[:5])]
    return OK, [f"audited ({what}): {audited} dependencies, no advisory outside {IGNORE_FILE.name}"]


def run_pip_audit(python: str, args: list[str], ignores: dict[str, str], what: str) -> tuple[int, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [python, "-m", "pip_audit", "--vulnerability-service", "pypi", "--progress-spinner", "off",
                   "--format", "json", "--output", str(out), *args]
        for advisory in ignores:
            command += ["--ignore-vuln", advisory]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if out.is_file() and out.stat().st_size:
            return classify(json.loads(out.read_text()), what)
    said = done.stderr.strip().splitlines()[-1:]  # pip-audit's last word (a traceback's last line)
    if "No module named pip_audit" in done.stderr:
        return BROKEN, [f"audit: pip-audit is not installed in {python} (it is in the test extras)"]
    if any(sign in done.stderr.lower() for sign in UNREACHABLE_SIGNS):
        return UNREACHABLE, [f"UNREACHABLE ({what}): pip-audit could not reach the advisory service", *said]
    return BROKEN, [f"audit: pip-audit failed ({what}), exit {done.returncode}", *said]


def floors_requirements(into: Path) -> Path:
    floors = subprocess.run([sys.executable, str(ROOT / "scripts" / "floors_smoke.py"), "constraints",
                             str(ROOT / "setup.cfg")], capture_output=True, text=True, check=True).stdout
    kept = [line for line in floors.splitlines() if line.split("==")[0].lower() not in LOCAL]
    into.write_text("\n".join(kept) + "\n")
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the environment to audit (pip-audit installed)")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument("--only", choices=("environment", "floors"), help="audit one set, not both")
    options = parser.parse_args()
    try:
        results = _audit(options)
    except (OSError, SystemExit, subprocess.SubprocessError) as error:  # the audit itself could not run (a bad ignore list included)
        print(f"audit: BROKEN: {error}", file=sys.stderr)
        return BROKEN
    for _, lines in results:
        print("\n".join(lines), file=sys.stderr if _ else sys.stdout)
    # Vulnerable outranks unreachable: an advisory found in one set is news even if the other went unchecked.
    codes = {code for code, _ in results}
    return next((code for code in (VULNERABLE, BROKEN, UNREACHABLE) if code in codes), OK)


def _audit(options: argparse.Namespace) -> list[tuple[int, list[str]]]:
    ignores = read_ignores(options.ignore_file)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if options.only in (None, "environment"):
            results.append(run_pip_audit(options.python, ["--skip-editable"], ignores, "installed environment"))
        if options.only in (None, "floors"):
            floors = floors_requirements(Path(tmp) / "floors.txt")
            results.append(run_pip_audit(options.python, ["--no-deps", "--disable-pip", "--requirement", str(floors)],
                                         ignores, "setup.cfg floors"))
    return results


if __name__ == "__main__":
    sys.exit(main())
