package main

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/web"
)

// With --authorizer, a principal's HTTP token gets nothing the ACLs have
// not granted while there is no Kafka server to ask (the HTTP listener is
// up before the Kafka server has opened its ACLs, which may take long on
// a big data directory; or --no-kafka): the check fails closed.
func TestHTTPAuthorizeFailsClosedWithoutKafkaServer(t *testing.T) {
	k := &kafkaFlags{}
	k.cfg.Authorizer = kafka.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	post := httptest.NewRequest("POST", "/subjects/s/versions", strings.NewReader(`{"schema":"\"string\""}`))
	post.RemoteAddr = "127.0.0.1:5000"
	if k.authorizeHTTP("User:mallory", post) {
		t.Error("a principal without ACLs may change the schema registry while the Kafka server starts")
	}
	get := httptest.NewRequest("GET", "/api/v1/topics", nil)
	get.RemoteAddr = "127.0.0.1:5000"
	if k.visibleHTTP("User:mallory", get, web.ResourceTopic, "orders") {
		t.Error("a principal without ACLs sees topic orders while the Kafka server starts")
	}
	if !k.authorizeHTTP("User:admin", post) || !k.visibleHTTP("User:admin", get, web.ResourceTopic, "orders") {
		t.Error("a super user is refused while the Kafka server starts")
	}
	// Without an authorizer every authenticated request is allowed, as before.
	k.cfg.Authorizer = kafka.AuthorizerConfig{}
	if !k.authorizeHTTP("User:mallory", post) || !k.visibleHTTP("User:mallory", get, web.ResourceTopic, "orders") {
		t.Error("without an authorizer a token's request is refused")
	}
}

// The HTTP API's lists leave out what a principal may not describe, on
// every request and every second of an event stream: that is no refusal,
// and counting each one in sluice_kafka_authorization_denied_total (and
// logging it) would drown the refusals worth seeing. A topic asked for by
// name and refused is counted by the HTTP server instead
// (sluice_http_auth_failures_total{reason="forbidden"}).
func TestHTTPVisibilityCountsNoKafkaDenials(t *testing.T) {
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := prometheus.NewRegistry()
	k := &kafkaFlags{}
	k.cfg = kafka.DefaultConfig()
	k.cfg.Registerer = reg
	k.cfg.Authorizer = kafka.AuthorizerConfig{Enabled: true}
	srv, err := kafka.New(l, k.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	k.srv.Store(srv)
	get := httptest.NewRequest("GET", "/api/v1/topics", nil)
	get.RemoteAddr = "127.0.0.1:5000"
	if k.visibleHTTP("User:mallory", get, web.ResourceTopic, "orders") {
		t.Fatal("a principal without ACLs sees topic orders")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "sluice_kafka_authorization_denied_total" && len(f.GetMetric()) > 0 {
			t.Fatalf("hiding a topic from an HTTP list counted a Kafka authorization denial: %v", f.GetMetric())
		}
	}
}
