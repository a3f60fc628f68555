#!/usr/bin/env bash
# Installs the servers the test suite starts itself (memcached, redis-server) when they are
# missing. The suite starts its own instances on free loopback ports; this only
# puts the binaries on the machine. PostgreSQL is expected to be running already
# (127.0.0.1:5432, or the DSN in POOLKIT_TEST_PG_DSN).
set -euo pipefail

missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: please install: ${missing[*]} (no apt-get here)" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install-test-servers: installing ${missing[*]} from the Debian packages" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages' services are not needed: tests run their own instances.
if command -v service >/dev/null 2>&1; then
    for name in "${missing[@]}"; do
        $sudo service "$name" stop >/dev/null 2>&1 || true
    done
fi
