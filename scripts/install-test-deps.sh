#!/usr/bin/env bash
# Installs the non-Go tools the tests use, when they are missing: Debian's
# kcat and python3-confluent-kafka (librdkafka) for the kafka package's
# interoperability tests, and chromium for the dashboard's browser test.
# Idempotent. It never fails the run: when the package manager is
# unavailable or unreachable it says why, and those tests skip.
set -u

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
/usr/bin/python3 -c 'import confluent_kafka' >/dev/null 2>&1 || need+=(python3-confluent-kafka)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
	echo "install-test-deps: kcat, python3-confluent-kafka and chromium already present"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: no apt-get on this machine; missing ${need[*]}: the tests that need them will skip"
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		echo "install-test-deps: not root and no passwordless sudo; missing ${need[*]}: the tests that need them will skip"
		exit 0
	fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/install-test-deps.log 2>&1; then
	# The package lists may be missing or stale: refresh once and retry.
	if ! $sudo apt-get update -q >>/tmp/install-test-deps.log 2>&1 ||
		! $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/install-test-deps.log 2>&1; then
		echo "install-test-deps: could not install ${need[*]} (see /tmp/install-test-deps.log): the tests that need them will skip"
		tail -n 3 /tmp/install-test-deps.log | sed 's/^/  /'
		exit 0
	fi
fi
echo "install-test-deps: installed ${need[*]}"
exit 0
