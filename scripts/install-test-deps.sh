#!/usr/bin/env bash
# Install the Debian packages that the test suite needs, skipping those already installed.
#
# Runs as root (CI runs as root) or through sudo. Add a package by appending it to
# TEST_PACKAGES. The tests start their own Dovecot and PostgreSQL instances, so the script
# stops a system Dovecot or PostgreSQL that the package installation started (Dovecot would
# hold ports 143 and 993).
set -euo pipefail

TEST_PACKAGES=(
    chromium
    dovecot-imapd
    postgresql
)

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-test-deps: must run as root, or with sudo available, to install: ${TEST_PACKAGES[*]}" >&2
    exit 1
fi

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ $status == "install ok installed" ]]
}

missing=()
for package in "${TEST_PACKAGES[@]}"; do
    if ! is_installed "$package"; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-test-deps: already installed: ${TEST_PACKAGES[*]}"
    exit 0
fi

echo "install-test-deps: installing: ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

for package in "${missing[@]}"; do
    if ! is_installed "$package"; then
        echo "install-test-deps: $package is still not installed after apt-get install" >&2
        exit 1
    fi
done
echo "install-test-deps: installed: ${missing[*]}"

# Debian's postgresql package creates a cluster (15/main) and starts it, like Dovecot below.
# The tests run their own throw-away server as the postgres user on a free port
# (bot/localservers.py), so stop the package's cluster and keep it from starting at boot.
for pid_file in /run/postgresql/*.pid; do
    [[ -e $pid_file ]] || continue
    postgres_pid=$(head -n 1 "$pid_file" 2>/dev/null || true)
    if [[ -n $postgres_pid && -d /proc/$postgres_pid ]]; then
        echo "install-test-deps: stopping the system PostgreSQL (pid $postgres_pid) that the installation started"
        "${SUDO[@]}" service postgresql stop || true
        if [[ -d /run/systemd/system ]]; then
            "${SUDO[@]}" systemctl disable postgresql || true
        else
            "${SUDO[@]}" update-rc.d postgresql disable || true
        fi
        break
    fi
done

# The package's post-install script starts the system Dovecot unless policy-rc.d forbids
# it, as the one in this project's CI container does. So stop and disable Dovecot only
# if its master runs, as its pid in /run/dovecot/master.pid shows. The tests' own
# instances keep their pid files in their own directories.
dovecot_pid=$(cat /run/dovecot/master.pid 2>/dev/null || true)
if [[ -n $dovecot_pid && -d /proc/$dovecot_pid ]]; then
    echo "install-test-deps: stopping the system Dovecot (pid $dovecot_pid) that the installation started"
    "${SUDO[@]}" service dovecot stop || true
    if [[ -d /run/systemd/system ]]; then
        "${SUDO[@]}" systemctl disable dovecot || true
    else
        "${SUDO[@]}" update-rc.d dovecot disable || true
    fi
fi
