#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs or starts what the tests
# need, then gofmt, go vet and go test -race over every package.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test dependencies"
if [ -x scripts/install-test-deps.sh ]; then
	scripts/install-test-deps.sh || echo "some optional test tools could not be installed; the tests that need them will skip"
fi

# The servers the connector tests talk to (PostgreSQL, MariaDB, Redis,
# RabbitMQ, Mosquitto, NATS): started when installed but down, configured
# for change data capture (the tests skip, saying why, when one is absent).
echo "== test services"
scripts/start-services.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -timeout 40m ./...
