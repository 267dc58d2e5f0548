"""The README runs top to bottom as written: every ``bash`` block, in order, in one real bash, against a fresh
``herald serve``.

Each ``curl`` in those blocks documents the status it answers with a trailing comment (``# → 201``). bash runs
the blocks with ``curl`` wrapped in a function that records each answer's status, so shell variables set from
earlier answers (``MSG=$(curl ... | jq -r .id)``) chain exactly as they do for a reader. Only the server's
address is substituted: the README's ``http://127.0.0.1:8000`` becomes the test server's URL. ``var/dev-api-key``
is read from the working directory, as after ``make run``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance import test_cli

served = test_cli.served

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPECTED = re.compile(r"#\s*→\s*(\d{3})\b")
# A curl command: the word curl where a command starts (line start, after `$(`, `|`, `;` or `&&`).
CURL = re.compile(r"(?:^|\$\(|[|;&]\s*)\s*curl\s", re.MULTILINE)

# Runs before the README's blocks: curl records each answer's status in order and passes the body through.
PRELUDE = r"""
set -eo pipefail
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl --max-time 30 "$@" -o "$body" -w '%{http_code}') || { cat "$body"; rm -f "$body"; return 1; }
  echo "$status" >> "$README_STATUSES"
  cat "$body"
  rm -f "$body"
}
"""


def bash_blocks(text: str) -> list[str]:
    return [match.group(1) for match in FENCE.finditer(text)]


def commands(block: str) -> Iterator[str]:
    """The block's commands, a continued line (ending in ``\\``) or an open quote joined to its continuation."""
    current: list[str] = []
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue  # a comment line or a blank between commands
        current.append(line)
        joined = "\n".join(current)
        if line.rstrip().endswith("\\") or joined.count("'") % 2 == 1:
            continue
        yield joined
        current = []
    if current:
        yield "\n".join(current)


def expected_statuses(blocks: list[str]) -> list[int]:
    """One documented status per curl command, in order; a curl without one is a README error."""
    statuses = []
    for block in blocks:
        for command in commands(block):
            if not CURL.search(command):
                continue
            found = EXPECTED.findall(command)
            assert len(found) == 1, f"this README curl documents no status (# → NNN):\n{command}"
            statuses.append(int(found[0]))
    return statuses


def test_readme_blocks_are_found_and_every_curl_documents_its_status() -> None:
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 5
    statuses = expected_statuses(blocks)
    assert len(statuses) >= 10
    assert all(200 <= status < 500 for status in statuses)


def test_a_curl_without_a_documented_status_is_caught() -> None:
    block = 'curl -s $HERALD_URL/health   # → 200\ncurl -s $HERALD_URL/api/v1/agents \\\n  -H "$H"\n'
    with pytest.raises(AssertionError, match="documents no status"):
        expected_statuses([block])


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("curl") is None, reason="needs curl and jq")
def test_readme_runs_top_to_bottom(served: tuple[str, str], tmp_path: Path) -> None:
    base, key = served
    assert (tmp_path / "var" / "dev-api-key").read_text().strip() == key
    blocks = bash_blocks(README.read_text())
    expected = expected_statuses(blocks)
    script = PRELUDE + "\n".join(block.replace(README_URL, base) for block in blocks)
    statuses_file = tmp_path / "statuses"
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "README_STATUSES": str(statuses_file),
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    answered = [int(line) for line in statuses_file.read_text().split()] if statuses_file.exists() else []
    report = (
        f"documented {expected}\nanswered   {answered}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.returncode == 0, report
    assert not [status for status in answered if status >= 500], report
    assert answered == expected, report
