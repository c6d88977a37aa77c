"""The two README commands' setup: the demo installs xqg without Ray or the test tools, the test
command with them; no package-index hostname is written into the scripts."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _extras_spec(env_value: str | None) -> str:
    """What scripts/setup.sh passes to pip for a given XQG_EXTRAS (its own shell expansion)."""
    lines = (ROOT / "scripts" / "setup.sh").read_text().splitlines()
    line = next(x for x in lines if x.startswith("extras=")).split("  #")[0]  # without its comment
    prefix = "" if env_value is None else f"XQG_EXTRAS={env_value!r}; "
    unset = "unset XQG_EXTRAS; " if env_value is None else ""
    out = subprocess.run(["bash", "-c", f'{unset}{prefix}{line}; echo ".${{extras:+[$extras]}}"'],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def test_demo_installs_without_ray_and_tests_with_their_extras():
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in core if re.match(r"ray\b", d)], "Ray must stay an extra"
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert 'XQG_EXTRAS="${XQG_EXTRAS-}" bash scripts/setup.sh' in demo
    assert _extras_spec("") == "."  # the demo: xqg alone
    assert _extras_spec(None) == ".[dev]"
    assert _extras_spec("dev,llama") == ".[dev,llama]"  # scripts/test.sh
    assert "XQG_EXTRAS=dev,llama bash scripts/setup.sh" in (ROOT / "scripts" / "test.sh").read_text()


def test_demo_command_runs_with_ray_unimportable():
    """The demo's code path never imports Ray (an environment without the extra)."""
    code = (
        "import sys; sys.modules['ray'] = None; from xqg.cli import main; "
        "sys.argv = ['xqg', 'demo', '--help']; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "demo" in r.stdout.lower()


def test_no_package_index_hostname_in_scripts():
    host = re.compile(r"https?://|pypi\.org|pythonhosted|download\.pytorch")
    for path in [*(ROOT / "scripts").glob("*.sh"), ROOT / ".ci" / "run"]:
        assert not host.search(path.read_text()), (
            f"{path.name} names a package index; read it from a variable"
        )
