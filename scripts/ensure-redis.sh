#!/usr/bin/env bash
# Makes sure redis-server is installed: installs Debian's package when missing and running as
# root; otherwise says how and fails.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "redis-server missing: installing the Debian package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq redis-server >/dev/null
	exit 0
fi
echo "redis-server is not installed; install it (e.g. sudo apt-get install -y redis-server) and retry" >&2
exit 1
