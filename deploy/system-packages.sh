#!/usr/bin/env bash
# Make sure the named Debian packages are installed: as root, install the missing ones with
# apt-get; otherwise print the one `sudo apt-get install` line that would, and fail.
# Used by the Makefile (`make demo`, `make test`) and so by CI's .ci/run.
set -euo pipefail

present() {
  # What each package provides, found where it installs it (a hand-built binary counts too).
  case "$1" in
    mosquitto) command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] ;;
    postgresql) ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 ;;
    python3-venv) python3 -c "import ensurepip" 2>/dev/null ;;
    fonts-noto-cjk) fc-list 2>/dev/null | grep -qi "Noto Sans CJK" ;;
    *) command -v "$1" >/dev/null ;;  # redis-server, npm, chromium, docker-compose: its command
  esac
}

missing=()
for package in "$@"; do
  present "$package" || missing+=("$package")
done
((${#missing[@]})) || exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages; install them with:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]}" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}"
