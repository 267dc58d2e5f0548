"""The README runs top to bottom as written: every ``bash`` block, in order, in one real bash, against a fresh
``herald serve``.

Each ``curl`` in those blocks documents the status it answers with a trailing comment (``# → 201``). bash runs
the blocks with ``curl`` wrapped in a function that records each answer's status, so shell variables set from
earlier answers (``MSG=$(curl ... | jq -r .id)``) chain exactly as they do for a reader. Only the server's
address is substituted: the README's ``http://127.0.0.1:8000`` becomes the test server's URL. ``var/dev-api-key``
is read from the working directory, as after ``make run``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance import test_cli

served = test_cli.served


@pytest.fixture
def served_slow_stop(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Like ``served``, but waits up to 90 s for the server to stop: the guides start an LLM agent run against
    an endpoint this machine cannot reach, and ``herald serve`` lets the run finish its retries first."""
    port = test_cli.free_port()
    env = test_cli.env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}")
    proc = subprocess.Popen(
        [*test_cli.HERALD, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        key_file = tmp_path / "var" / "dev-api-key"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if key_file.exists() and httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield base, key_file.read_text().strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


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


def expected_statuses(blocks: list[str], *, required: bool = True) -> list[int | None]:
    """One documented status per curl command, in order. In the README every curl must document one; in the
    guides a curl without one (None) must answer 2xx."""
    statuses: list[int | None] = []
    for block in blocks:
        for command in commands(block):
            if not CURL.search(command):
                continue
            found = EXPECTED.findall(command)
            assert len(found) <= 1, f"this curl documents two statuses:\n{command}"
            assert found or not required, f"this README curl documents no status (# → NNN):\n{command}"
            statuses.append(int(found[0]) if found else None)
    return statuses


def require_tools() -> None:
    """curl and jq run the examples; .ci/run installs jq, so in CI their absence fails instead of skipping."""
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"missing {missing}: .ci/run installs them")
    if missing:
        pytest.skip(f"needs {missing}")


def run_examples(script: str, cwd: Path, setup: str = "") -> tuple[list[int], str]:
    """Run ``script`` in bash after the prelude; returns the statuses curl answered and a report to fail with."""
    statuses_file = cwd / f"statuses-{os.urandom(4).hex()}"
    result = subprocess.run(
        ["bash", "-c", PRELUDE + setup + script],
        check=False,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "README_STATUSES": str(statuses_file), "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    answered = [int(line) for line in statuses_file.read_text().split()] if statuses_file.exists() else []
    report = (
        f"answered {answered}\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.returncode == 0, report
    return answered, report


def matches(expected: list[int | None], answered: list[int]) -> bool:
    return len(expected) == len(answered) and all(
        200 <= got < 300 if want is None else got == want
        for want, got in zip(expected, answered, strict=True)
    )


def test_readme_blocks_are_found_and_every_curl_documents_its_status() -> None:
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 5
    statuses = expected_statuses(blocks)
    assert len(statuses) >= 10
    assert all(status is not None and 200 <= status < 500 for status in statuses)


def test_a_curl_without_a_documented_status_is_caught() -> None:
    block = 'curl -s $HERALD_URL/health   # → 200\ncurl -s $HERALD_URL/api/v1/agents \\\n  -H "$H"\n'
    with pytest.raises(AssertionError, match="documents no status"):
        expected_statuses([block])
    assert expected_statuses([block], required=False) == [200, None]


def test_readme_runs_top_to_bottom(served: tuple[str, str], tmp_path: Path) -> None:
    require_tools()
    base, key = served
    assert (tmp_path / "var" / "dev-api-key").read_text().strip() == key
    blocks = bash_blocks(README.read_text())
    expected = expected_statuses(blocks)
    answered, report = run_examples("\n".join(block.replace(README_URL, base) for block in blocks), tmp_path)
    assert not [status for status in answered if status >= 500], report
    assert answered == expected, f"documented {expected}\n{report}"


# The guides' runnable examples (``bash`` blocks; ``shell`` blocks are shown, not run), in this order on one
# server: the channels page goes last, since it makes a real Slack channel the default.
GUIDES = [
    "getting-started.md",
    "guides/messaging.md",
    "guides/automation.md",
    "guides/conversations.md",
    "guides/agents.md",
    "guides/approvals.md",
    "guides/otp.md",
    "guides/channels.md",
    "guides/templates.md",
    "guides/data-sources.md",
    "guides/campaigns.md",
    "guides/email.md",
    "guides/suggestions.md",
    "guides/digests.md",
    "guides/learning.md",
]


def test_every_guide_with_examples_is_run() -> None:
    docs = README.parent / "docs"
    with_examples = {
        str(path.relative_to(docs)) for path in docs.rglob("*.md") if bash_blocks(path.read_text())
    }
    assert with_examples == set(GUIDES)


def test_guides_examples_run_as_written(served_slow_stop: tuple[str, str], tmp_path: Path) -> None:
    """Each guide's bash blocks, in order, in one bash per page: no 5xx, and every curl answers 2xx unless it
    documents another status."""
    require_tools()
    base, key = served_slow_stop
    setup = f'export HERALD_URL={base} KEY={key}\nH="Authorization: Bearer $KEY"\n'
    for page in GUIDES:
        blocks = bash_blocks((README.parent / "docs" / page).read_text())
        expected = expected_statuses(blocks, required=False)
        answered, report = run_examples("\n".join(blocks), tmp_path, setup)
        assert matches(expected, answered), f"{page}: documented {expected}\n{report}"
