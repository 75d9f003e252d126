package kafka

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
)

// aclSeeds returns CreateAcls, DescribeAcls and DeleteAcls frames at each
// served version.
func aclSeeds() [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var out [][]byte
	for v := int16(0); v <= 3; v++ {
		c := kmsg.NewPtrCreateACLsRequest()
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypePrefixed
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		c.Creations = append(c.Creations, cr)
		d := kmsg.NewPtrDescribeACLsRequest()
		d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeMatch, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		d.ResourceName = kmsg.StringPtr("t")
		del := kmsg.NewPtrDeleteACLsRequest()
		df := kmsg.NewDeleteACLsRequestFilter()
		df.ResourceType, df.Operation, df.PermissionType = kmsg.ACLResourceTypeTopic, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, df)
		for _, r := range []kmsg.Request{c, d, del} {
			r.SetVersion(v)
			out = append(out, f.AppendRequest(nil, r, 1)[4:])
		}
	}
	return out
}

// FuzzAuthorizedDispatch sends arbitrary frames (every API, the ACL APIs
// among them) through the request path of a server with the authorizer
// on, as a principal with a few ACLs: the authorisation checks, which
// rewrite requests and amend answers, and the ACL decoders must never
// panic, and every answer must encode.
func FuzzAuthorizedDispatch(f *testing.F) {
	for _, s := range append(seedRequests(f), aclSeeds()...) {
		f.Add(s, true)
	}
	log, err := logstore.Open(logstore.Options{Dir: f.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer log.Close()
	cfg := DefaultConfig()
	cfg.MaxTransactionTimeout = time.Second
	cfg.MaxPartitions = 4
	cfg.Authorizer = AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	s, err := New(log, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	acl := func(rt auth.ResourceType, name string, pt auth.PatternType, op auth.Operation, perm auth.Permission) auth.ACL {
		return auth.ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: "User:alice", Host: "*", Operation: op, Permission: perm}
	}
	if err := s.acls.Add(context.Background(),
		acl(auth.ResourceTopic, "t", auth.PatternPrefixed, auth.OpAll, auth.PermAllow),
		acl(auth.ResourceTopic, "tx", auth.PatternLiteral, auth.OpWrite, auth.PermDeny),
		acl(auth.ResourceGroup, "g", auth.PatternLiteral, auth.OpRead, auth.PermAllow),
		acl(auth.ResourceTransactionalID, "*", auth.PatternLiteral, auth.OpWrite, auth.PermAllow),
	); err != nil {
		f.Fatal(err)
	}
	conn := func(principal string) *clientConn {
		cc := &clientConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092}, remote: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}, auth: newConnAuth(Listener{Protocol: Plaintext})}
		cc.auth.principal = principal
		return cc
	}
	alice, admin := conn("User:alice"), conn("User:admin")
	f.Fuzz(func(t *testing.T, body []byte, asAlice bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		cc := admin
		if asAlice {
			cc = alice
		}
		serveFrame(ctx, s, cc, body)
	})
}
