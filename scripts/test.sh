#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs or starts what the tests
# need, then gofmt, go vet and go test -race over every package.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test dependencies"
if [ -x scripts/install-test-deps.sh ]; then
	scripts/install-test-deps.sh || echo "some optional test tools could not be installed; the tests that need them will skip"
fi

# PostgreSQL for the connector tests: start the machine's cluster if it is
# installed but down (the tests skip, saying why, when none answers).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
	if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || echo "could not start PostgreSQL; its tests will skip"
	fi
fi

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
