"""scripts/find_python.sh picks a Python 3.11 where the default python3 is 3.12 or 3.13.

Every Python, pyenv and uv here is a stub shell script on a PATH that holds nothing else, so
the tests see exactly the machine they describe, whatever this machine has installed.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "find_python.sh"
# Places the script looks at outside PATH (Homebrew, python.org); a machine that has one of them
# would answer some of these questions itself.
FIXED_PLACES = ["/usr/local/bin/python3.11", "/usr/local/opt/python@3.11/bin/python3.11",
                "/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11",
                "/opt/homebrew/bin/python3.11"]
pytestmark = pytest.mark.skipif(any(os.path.exists(place) for place in FIXED_PLACES),
                                reason="this machine has a Python 3.11 in a fixed place the script checks")


def write_script(path, body):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def fake_python(path, version, system="linux", machine="x86_64", venv="venv"):
    """A stub that answers the script's probe as a Python of that version and platform would."""
    return write_script(path, f'echo "{version} {system} {machine} {venv} {path}"')


@pytest.fixture
def machine(tmp_path):
    """A bin folder that is the whole PATH, with `uname` answering Linux x86_64 unless replaced."""
    bin_folder = tmp_path / "bin"
    write_script(bin_folder / "uname", 'echo "Linux x86_64"')
    return bin_folder


def find_python(bin_folder, **extra_env):
    env = {"PATH": str(bin_folder), "HOME": str(bin_folder.parent), **extra_env}
    return subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("default_version", ["3.12", "3.13"])
def test_python3_11_on_path_wins_over_a_newer_python3(machine, default_version):
    fake_python(machine / "python3", default_version)
    wanted = fake_python(machine / "python3.11", "3.11")
    result = find_python(machine)
    assert (result.returncode, result.stdout.strip()) == (0, str(wanted)), result.stderr


def test_python3_itself_when_it_is_3_11(machine):
    wanted = fake_python(machine / "python3", "3.11")
    assert find_python(machine).stdout.strip() == str(wanted)


@pytest.mark.parametrize("default_version", ["3.12", "3.13"])
def test_pyenv_version_found_when_the_active_python_is_newer(machine, tmp_path, default_version):
    fake_python(machine / "python3", default_version)
    # pyenv's shim for python3.11 fails when 3.11 is not the active version
    write_script(machine / "python3.11", 'echo "pyenv: python3.11: command not found" >&2; exit 127')
    pyenv_root = tmp_path / "pyenv"
    fake_python(pyenv_root / "versions" / "3.13.0" / "bin" / "python3.13", "3.13")
    wanted = fake_python(pyenv_root / "versions" / "3.11.9" / "bin" / "python3.11", "3.11")
    write_script(machine / "pyenv", f'[ "$1" = root ] && echo "{pyenv_root}"')
    result = find_python(machine)
    assert (result.returncode, result.stdout.strip()) == (0, str(wanted)), result.stderr


def fake_uv(bin_folder, managed_python, install_works):
    """uv that finds `managed_python` once installed; `uv python install` logs its request."""
    log = bin_folder.parent / "uv.log"
    install = (f'fake_python_body > "{managed_python}"; /bin/chmod +x "{managed_python}"' if install_works
               else 'echo "error: Failed to download https://github.com/...: connection refused" >&2; exit 2')
    write_script(bin_folder / "uv", f"""
fake_python_body() {{ printf '#!/bin/sh\\necho "3.11 linux x86_64 venv {managed_python}"\\n'; }}
echo "$*" >> "{log}"
case "$1 $2" in
  "python find") [ -x "{managed_python}" ] && echo "{managed_python}" && exit 0; exit 2 ;;
  "python install") {install} ;;
esac""")
    return log


def test_uv_installs_a_managed_python_when_none_is_on_the_machine(machine, tmp_path):
    fake_python(machine / "python3", "3.13")
    managed = tmp_path / "uv-python" / "python3.11"
    managed.parent.mkdir()
    log = fake_uv(machine, managed, install_works=True)
    result = find_python(machine)
    assert (result.returncode, result.stdout.strip()) == (0, str(managed)), result.stderr
    assert "uv python install 3.11" in result.stderr
    assert log.read_text().splitlines() == ["python find 3.11", "python install 3.11", "python find 3.11"]


def test_apple_silicon_asks_uv_for_the_x86_64_build(machine, tmp_path):
    write_script(machine / "uname", 'echo "Darwin arm64"')
    fake_python(machine / "python3.11", "3.11", system="darwin", machine="arm64")
    managed = tmp_path / "uv-python" / "python3.11"
    managed.parent.mkdir()
    log = fake_uv(machine, managed, install_works=True)
    result = find_python(machine)
    assert result.returncode == 0, result.stderr
    assert "python install cpython-3.11-macos-x86_64-none" in log.read_text().splitlines()


def test_failed_uv_download_says_what_to_install(machine, tmp_path):
    fake_python(machine / "python3", "3.13")
    log = fake_uv(machine, tmp_path / "never" / "python3.11", install_works=False)
    result = find_python(machine)
    assert result.returncode == 1 and result.stdout == ""
    assert "python install 3.11" in log.read_text()
    assert f"{machine / 'python3'} is Python 3.13" in result.stderr
    assert "uv python install 3.11 failed (uv downloads Python from github.com" in result.stderr
    assert "uv is installed but could not download a Python" in result.stderr
    for line in ["Ubuntu:", "Debian 12:", "macOS (Intel):", "Apple Silicon:", "Windows:",
                 "make lab PYTHON=/path/to/python3.11"]:
        assert line in result.stderr


def test_nothing_found_names_what_was_rejected(machine):
    fake_python(machine / "python3", "3.12")
    fake_python(machine / "python3.11", "3.11", venv="no-venv")
    result = find_python(machine)
    assert result.returncode == 1 and result.stdout == ""
    assert f"{machine / 'python3.11'} has no venv module (Debian/Ubuntu: sudo apt install python3.11-venv)" \
        in result.stderr
    assert f"{machine / 'python3'} is Python 3.12" in result.stderr
    assert "any platform:   uv (https://docs.astral.sh/uv/" in result.stderr


def test_apple_silicon_python_is_refused_with_the_reason(machine):
    write_script(machine / "uname", 'echo "Darwin arm64"')
    fake_python(machine / "python3.11", "3.11", system="darwin", machine="arm64")
    result = find_python(machine)
    assert result.returncode == 1
    assert "is an arm64 (Apple Silicon) Python: MXNet 1.9.1 has no wheel for it" in result.stderr


def test_python_named_by_the_reader_is_used_or_refused(machine):
    wanted = fake_python(machine.parent / "elsewhere" / "python", "3.11")
    fake_python(machine / "python3.11", "3.11")
    assert find_python(machine, PYTHON=str(wanted)).stdout.strip() == str(wanted)
    too_new = fake_python(machine.parent / "elsewhere" / "python3.13", "3.13")
    result = find_python(machine, PYTHON=str(too_new))
    assert result.returncode == 1 and result.stdout == ""
    assert f"PYTHON={too_new} cannot be used:\n  {too_new} is Python 3.13" in result.stderr


def test_this_machines_pythons_when_pyenv_makes_python3_3_13():
    """On a machine with pyenv and its 3.13 (this one), the real script still picks a 3.11."""
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    newer = sorted(pyenv_versions.glob("3.13*")) + sorted(pyenv_versions.glob("3.12*"))
    if not newer or not list(pyenv_versions.glob("3.11*")):
        pytest.skip("needs pyenv with a 3.11 and a 3.12 or 3.13 installed")
    env = {**os.environ, "PYENV_VERSION": newer[0].name}
    env.pop("PYTHON", None)
    python3 = subprocess.run(["python3", "--version"], env=env, capture_output=True, text=True).stdout
    assert python3.startswith(("Python 3.12", "Python 3.13")), python3
    chosen = subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                            timeout=60).stdout.strip()
    version = subprocess.run([chosen, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Python 3.11"), (chosen, version)
