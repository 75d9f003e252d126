// Package web serves Sluice's HTTP endpoints: health (/healthz, /readyz)
// and Prometheus metrics (/metrics). It binds to loopback by default; any
// other bind address requires a bearer token.
package web
