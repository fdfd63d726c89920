"""scripts/setup, run for real in a throw-away copy of the repository.

Each case puts fakes first on PATH (a Python that is too old or has no venv
module, a redis-server that is too old, an apt-get that fails) and checks
that setup stops with one line naming what is missing. The PEP 668 case runs
the whole venv route for real, offline: the base Python refuses `pip install`
the way Debian's does, and the project is a stand-in whose build backend is in
the tree, so pip needs no index.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash") or "/bin/bash"

# A PEP 517 backend in the tree: builds an editable wheel holding one .pth line.
BACKEND = '''
import base64, hashlib, os, tomllib, zipfile

NAME, VERSION = "setup_probe", "0.1"
DIST = f"{NAME}-{VERSION}.dist-info"


def _record(files):
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}")
    return "\\n".join([*lines, f"{DIST}/RECORD,,", ""]).encode()


def _metadata():
    with open("pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"].get("dependencies", [])
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {VERSION}",
             "Provides-Extra: test", *(f"Requires-Dist: {d}" for d in deps)]
    return ("\\n".join(lines) + "\\n").encode()


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        f"{NAME}.pth": (os.path.abspath("src") + "\\n").encode(),
        f"{DIST}/METADATA": _metadata(),
        f"{DIST}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\n"
                         b"Tag: py3-none-any\\n",
    }
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{DIST}/RECORD", _record(files))
    return name


build_wheel = build_editable
'''

PYPROJECT = '''[build-system]
requires = []
build-backend = "probe_backend"
backend-path = ["."]

[project]
name = "setup_probe"
version = "0.1"

[project.optional-dependencies]
test = []
'''


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """scripts/setup and scripts/venv.sh beside a stand-in project."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup", "venv.sh"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "probe_backend.py").write_text(BACKEND)
    (root / "src").mkdir()
    (root / "src" / "setup_probe_mod.py").write_text("OK = True\n")
    return root


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A bin directory put first on PATH; a redis-server 7 by default, and an nginx and
    a chromium (so that setup never installs one for real)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "redis-server",
                "#!/bin/sh\necho 'Redis server v=7.0.15 sha=00000000:0 bits=64'\n")
    _executable(bin_dir / "nginx", "#!/bin/sh\necho 'nginx version: nginx/1.22.1' >&2\n")
    _executable(bin_dir / "chromium", "#!/bin/sh\necho 'Chromium 131.0.6778.85'\n")
    return bin_dir


def run_setup(repo: Path, fakes: Path, *args: str, path: str | None = None,
              **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHON", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    base["PATH"] = f"{fakes}{os.pathsep}{path if path is not None else os.environ['PATH']}"
    base.update(env)
    return subprocess.run([BASH, str(repo / "scripts" / "setup"), *args], env=base,
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("setup: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_python_that_is_too_old_is_one_line(repo, fakes):
    _executable(fakes / "python3", "#!/bin/sh\necho 3.9.2\n")
    line = one_line(run_setup(repo, fakes))
    assert "Python 3.11 or newer is needed" in line and "3.9.2" in line
    assert not (repo / ".venv").exists()


def test_no_python_at_all_is_one_line(repo, fakes):
    line = one_line(run_setup(repo, fakes, PYTHON="no-such-python3"))
    assert "no-such-python3 not found" in line and "3.11" in line


def test_a_python_without_the_venv_module_names_the_package(repo, fakes, tmp_path):
    # Debian's python3 without python3-venv: `venv` imports, `ensurepip` does not.
    blocked = tmp_path / "blocked" / "ensurepip"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('ensurepip is not available')\n")
    _executable(fakes / "python3",
                f"#!/bin/sh\nPYTHONPATH={blocked.parent} exec {sys.executable} \"$@\"\n")
    line = one_line(run_setup(repo, fakes))
    assert "venv module is missing" in line and "python3-venv" in line
    assert not (repo / ".venv").exists()


def test_a_redis_that_is_too_old_is_one_line(repo, fakes):
    _executable(fakes / "redis-server", "#!/bin/sh\necho 'Redis server v=6.2.6 sha=0 bits=64'\n")
    line = one_line(run_setup(repo, fakes, "--check"))
    assert "redis-server 7.0 or newer is needed" in line and "6.2.6" in line


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH with only the tools setup uses, so redis-server is not on it."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "id", "cksum", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    _executable(tools / "python3", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    return str(tools)


def test_missing_redis_in_check_mode_is_one_line(repo, fakes, bare_path):
    (fakes / "redis-server").unlink()
    line = one_line(run_setup(repo, fakes, "--check", path=bare_path))
    assert "redis-server not found" in line and "Redis 7" in line


def test_missing_redis_that_apt_cannot_install_ends_with_one_line(repo, fakes, bare_path):
    (fakes / "redis-server").unlink()
    _executable(fakes / "apt-get", "#!/bin/sh\necho 'E: simulated: no network' >&2\nexit 100\n")
    _executable(fakes / "sudo", '#!/bin/sh\nexec "$@"\n')
    result = run_setup(repo, fakes, path=bare_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("setup: apt-get could not install redis-server")
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("setup:")] == [last]


def test_missing_chromium_is_a_note_and_setup_goes_on(repo, fakes, bare_path):
    (fakes / "chromium").unlink()
    result = run_setup(repo, fakes, "--check", path=bare_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("note: chromium not found: the dashboard browser test will be skipped "
            "(apt-get install chromium)") in result.stdout


def test_chromium_is_installed_with_apt_when_missing(repo, fakes, bare_path, tmp_path):
    (fakes / "chromium").unlink()
    log = tmp_path / "apt.log"
    _executable(fakes / "apt-get", f'#!/bin/sh\necho "$*" >>{log}\n')
    _executable(fakes / "sudo", '#!/bin/sh\nexec "$@"\n')
    result = run_setup(repo, fakes, PIP_NO_INDEX="1", path=bare_path)
    assert "installing chromium (Debian package, for the dashboard browser test)" \
        in result.stdout
    assert "install -y -qq chromium" in log.read_text()


def test_an_active_venv_without_pip_is_one_line(repo, fakes, tmp_path):
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    line = one_line(run_setup(repo, fakes, VIRTUAL_ENV=str(venv)))
    assert f"pip is missing from {venv}" in line


def test_externally_managed_python_goes_through_a_venv(repo, fakes):
    """PEP 668: the base Python refuses `pip install`; setup must never ask it to,
    and must install into .venv instead (pip inside a venv ignores the marker)."""
    _executable(fakes / "python3", f"""#!/bin/sh
case "$*" in
  *"-m pip install"*)
    echo "error: externally-managed-environment" >&2
    echo "This environment is externally managed (EXTERNALLY-MANAGED)" >&2
    exit 1;;
esac
exec {sys.executable} "$@"
""")
    result = run_setup(repo, fakes, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "externally-managed" not in result.stderr
    vpy = repo / ".venv" / "bin" / "python"
    probe = subprocess.run([str(vpy), "-c", "import setup_probe_mod; print(setup_probe_mod.OK)"],
                           capture_output=True, text=True, check=False, cwd="/")
    assert probe.stdout.strip() == "True", probe.stderr
    assert (repo / ".venv" / ".dreams-sms-setup").exists()


def test_a_failing_pip_install_fails_setup(repo, fakes):
    """pip's exit status is not swallowed: a dependency it cannot get stops setup."""
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'version = "0.1"\n', 'version = "0.1"\ndependencies = ["no-such-dependency-at-all"]\n'))
    result = run_setup(repo, fakes, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    assert result.returncode == 1
    assert "no-such-dependency-at-all" in result.stderr  # pip's own reason is shown
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("setup: pip could not install this package")
    assert not (repo / ".venv" / ".dreams-sms-setup").exists()
