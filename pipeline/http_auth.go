package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/auth"
	nethttp "github.com/sluicehq/sluice/connector/http"
)

// Principal tokens on the http source (auth: principals). A request's
// bearer token is looked up in the embedded log's token store
// (__sluice_tokens, managed with sluice token create|list|revoke) and its
// principal must hold WRITE on the source's ACL topic by the ACLs of that
// same log (__sluice_acls, as sluice acl and the Kafka listener manage
// them; a tenant's members write its topics). There are no super users
// and no allow-if-no-ACL here: only an ACL lets a principal in.

// ingestAuth is the embedded log's token store and authorizer, opened
// once per Host and shared by its http sources.
type ingestAuth struct {
	tokens *auth.Tokens
	authz  *auth.Authorizer
}

func (h *Host) ingestAuth() (*ingestAuth, error) {
	h.authMu.Lock()
	defer h.authMu.Unlock()
	if h.authStores != nil {
		return h.authStores, nil
	}
	l, err := h.log()
	if err != nil {
		return nil, fmt.Errorf("auth: principals needs the embedded log's tokens and ACLs: %w", err)
	}
	ctx := context.Background()
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("auth: principals: %w", err)
	}
	acls, err := auth.OpenACLStore(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("auth: principals: %w", err)
	}
	tenants, err := auth.OpenTenants(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("auth: principals: %w", err)
	}
	h.authStores = &ingestAuth{tokens: tokens, authz: auth.NewAuthorizer(acls, nil, false).WithTenants(tenants)}
	return h.authStores, nil
}

// topicAuthorizer is a nethttp.Authorizer: WRITE on one topic.
type topicAuthorizer struct {
	a     *ingestAuth
	topic string
	now   func() time.Time
}

func (t *topicAuthorizer) AuthorizeIngest(token, host string) (string, nethttp.Verdict) {
	now := t.now()
	principal, ok := t.a.tokens.Principal(token, now)
	if !ok {
		if t.a.tokens.Expired(token, now) {
			return "", nethttp.ExpiredToken
		}
		return "", nethttp.UnknownToken
	}
	if !t.a.authz.Authorize(principal, host, auth.OpWrite, auth.ResourceTopic, t.topic) {
		return principal, nethttp.Denied
	}
	return principal, nethttp.Allowed
}
