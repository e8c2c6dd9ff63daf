#!/usr/bin/env bash
# Makes sure Chromium is installed for the dashboard's browser test (browser/): installs
# Debian's chromium package when it is missing and running as root; otherwise says how and
# fails. REDRAIN_SKIP_BROWSER=1 (a developer's machine without it) skips the check, and the test;
# not under CI=true, where the browser test must run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ -n "${REDRAIN_CHROMIUM:-}" ] && [ -x "$REDRAIN_CHROMIUM" ]; then exit 0; fi
if [ "${REDRAIN_SKIP_BROWSER:-}" = 1 ] && [ "${CI:-}" != true ]; then
	echo "chromium missing; REDRAIN_SKIP_BROWSER=1: the browser test will be skipped" >&2
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "chromium missing: installing the Debian package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq chromium >/dev/null
	exit 0
fi
echo "chromium is not installed; install it (e.g. sudo apt-get install -y chromium) and retry," >&2
echo "or set REDRAIN_SKIP_BROWSER=1 to skip the dashboard's browser test" >&2
exit 1
