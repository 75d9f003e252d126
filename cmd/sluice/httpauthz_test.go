package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/kafka"
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
