#!/bin/sh
# Print the path of a Python 3.11 that can install this tutorial's requirements; `make` calls this
# before it creates .venv. numpy 1.23.5 (the last numpy MXNet 1.9.1 imports with) has wheels up to
# Python 3.11 only, and MXNet 1.9.1 has wheels for Linux x86_64 / aarch64 and macOS x86_64 only,
# so a default python3 of 3.12 or 3.13, or an Apple Silicon (arm64) Python, cannot run it.
#
# Looks, in order, at: $PYTHON (make lab PYTHON=/path/to/python3.11), python3.11 and python3 on
# PATH, pyenv's 3.11 versions, uv's (`uv python find`), and finally asks uv to download one
# (`uv python install`). Messages go to stderr; only the chosen path goes to stdout.
#
# Uses nothing but sh built-ins and `uname`, so tests/test_find_python.py can fake every Python.

# One line: major.minor, platform, machine, whether venv can bootstrap pip, the interpreter's path
# (for a virtual environment's interpreter, its base one, which makes the sturdier .venv).
PROBE='import platform, sys
try:
    import ensurepip, venv
    has_venv = "venv"
except ImportError:
    has_venv = "no-venv"
print("%d.%d" % sys.version_info[:2], sys.platform, platform.machine(), has_venv,
      getattr(sys, "_base_executable", None) or sys.executable)'

rejected=""      # what was found and why it does not do, for the final error message
have_uv=""
command -v uv >/dev/null 2>&1 && have_uv=1

note() { rejected="$rejected
  $1"; }

# accept PATH-OR-NAME: print the interpreter and exit when it is a usable Python 3.11.
accept() {
    line=$("$1" -c "$PROBE" 2>/dev/null) || { [ -n "$2" ] && note "$1: does not run"; return 1; }
    executable=${line#* * * * }   # the rest of the line: a path may hold spaces
    set -- $line
    version=$1 system=$2 machine=$3 venv_ok=$4
    if [ "$version" != "3.11" ]; then
        note "$executable is Python $version"
        return 1
    fi
    case "$system $machine" in
        "linux x86_64" | "linux aarch64" | "darwin x86_64") ;;
        "darwin arm64")
            note "$executable is an arm64 (Apple Silicon) Python: MXNet 1.9.1 has no wheel for it"
            return 1 ;;
        *)
            note "$executable runs on $system $machine: MXNet 1.9.1 has wheels for Linux x86_64 / aarch64 and macOS x86_64 only"
            return 1 ;;
    esac
    if [ "$venv_ok" != "venv" ] && [ -z "$have_uv" ]; then
        note "$executable has no venv module (Debian/Ubuntu: sudo apt install python3.11-venv)"
        return 1
    fi
    echo "$executable"
    exit 0
}

if [ -n "$PYTHON" ]; then
    accept "$PYTHON" named
    echo "PYTHON=$PYTHON cannot be used:$rejected" >&2
    echo "Name a Python 3.11 (make lab PYTHON=/path/to/python3.11), or leave PYTHON unset to let make look for one." >&2
    exit 1
fi

for name in python3.11 python3; do
    command -v "$name" >/dev/null 2>&1 && accept "$name"
done

# pyenv's shims answer only for the active version, so look at its installed versions directly.
if command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null)
    for candidate in "$pyenv_root"/versions/3.11*/bin/python3.11; do
        [ -x "$candidate" ] && accept "$candidate"
    done
fi

# Homebrew's and python.org's usual places, for a PATH that does not list them.
for candidate in /usr/local/bin/python3.11 /usr/local/opt/python@3.11/bin/python3.11 \
                 /Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11 /opt/homebrew/bin/python3.11; do
    [ -x "$candidate" ] && accept "$candidate"
done

# uv can provide a managed CPython; on Apple Silicon, the x86_64 build, which runs under Rosetta 2.
case "$(uname -sm 2>/dev/null)" in
    "Darwin arm64") uv_request=cpython-3.11-macos-x86_64-none ;;
    *) uv_request=3.11 ;;
esac
if [ -n "$have_uv" ]; then
    found=$(uv python find "$uv_request" 2>/dev/null) && accept "$found"
    echo "No Python 3.11 on this machine; asking uv for one: uv python install $uv_request" >&2
    if uv python install "$uv_request" >&2; then
        found=$(uv python find "$uv_request" 2>/dev/null) && accept "$found"
        note "uv python install $uv_request succeeded, but uv python find $uv_request then found no usable Python"
    else
        note "uv python install $uv_request failed (uv downloads Python from github.com; its output is above)"
    fi
fi

if [ -n "$have_uv" ]; then
    uv_advice="uv:             uv is installed but could not download a Python (see above); make runs
                  uv python install $uv_request, which needs https://github.com"
else
    uv_advice="any platform:   uv (https://docs.astral.sh/uv/getting-started/installation/), which downloads a
                  Python 3.11 by itself the next time you run make"
fi
printf '%s\n' "No usable Python 3.11 found. This tutorial needs Python 3.11: numpy 1.23.5, the last numpy that
MXNet 1.9.1 imports with, has no wheels for Python 3.12 or later, and MXNet 1.9.1 has wheels for
Linux x86_64 / aarch64 and macOS x86_64 only.
Looked at:${rejected:-
  no python3.11, python3, pyenv or uv on PATH}
Do one of these, then run make again:
  $uv_advice
  Ubuntu:         sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt install python3.11 python3.11-venv
  Debian 12:      sudo apt install python3.11 python3.11-venv
  Fedora:         sudo dnf install python3.11
  pyenv:          pyenv install 3.11
  macOS (Intel):  brew install python@3.11
  Apple Silicon:  softwareupdate --install-rosetta --agree-to-license, then uv as above (make asks uv
                  for the x86_64 build, which runs under Rosetta 2)
  Windows:        use WSL2 (wsl --install -d Ubuntu), then the Ubuntu line above inside it
or name a Python 3.11 you have: make lab PYTHON=/path/to/python3.11" >&2
exit 1
