package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// CreateACLs implements backend: stored in the data directory's
// __sluice_acls, as the server does.
func (b *localBackend) CreateACLs(ctx context.Context, acls []auth.ACL) error {
	st, err := auth.OpenACLStore(ctx, b.log)
	if err != nil {
		return err
	}
	return st.Add(ctx, acls...)
}

// ListACLs implements backend.
func (b *localBackend) ListACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error) {
	st, err := auth.OpenACLStore(ctx, b.log)
	if err != nil {
		return nil, err
	}
	return st.ACLs(f), nil
}

// DeleteACLs implements backend.
func (b *localBackend) DeleteACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error) {
	st, err := auth.OpenACLStore(ctx, b.log)
	if err != nil {
		return nil, err
	}
	del, err := st.Delete(ctx, f)
	if err != nil {
		return nil, err
	}
	return del[0], nil
}

// CreateACLs implements backend: CreateAcls.
func (b *remoteBackend) CreateACLs(ctx context.Context, acls []auth.ACL) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
		c.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
		c.Principal, c.Host = a.Principal, a.Host
		c.Operation, c.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return fmt.Errorf("create ACLs on %s: %w", b.broker, err)
	}
	if len(resp.Results) != len(acls) {
		return fmt.Errorf("create ACLs on %s: %d answers for %d ACLs", b.broker, len(resp.Results), len(acls))
	}
	var errs []error
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("ACL %s: %w", acls[i], withMessage(err, deref(r.ErrorMessage))))
		}
	}
	return errors.Join(errs...)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ListACLs implements backend: DescribeAcls.
func (b *remoteBackend) ListACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourceName = kmsg.ACLResourceType(f.ResourceType), f.ResourceName
	req.ResourcePatternType = kmsg.ACLResourcePatternType(f.PatternType)
	req.Principal, req.Host = f.Principal, f.Host
	req.Operation, req.PermissionType = kmsg.ACLOperation(f.Operation), kmsg.ACLPermissionType(f.Permission)
	resp, err := req.RequestWith(ctx, b.cl)
	if err == nil {
		err = withMessage(kerr.ErrorForCode(resp.ErrorCode), deref(resp.ErrorMessage))
	}
	if err != nil {
		return nil, fmt.Errorf("describe ACLs on %s: %w", b.broker, err)
	}
	var out []auth.ACL
	for _, r := range resp.Resources {
		for _, e := range r.ACLs {
			out = append(out, auth.ACL{
				ResourceType: auth.ResourceType(r.ResourceType), ResourceName: r.ResourceName,
				PatternType: auth.PatternType(r.ResourcePatternType), Principal: e.Principal, Host: e.Host,
				Operation: auth.Operation(e.Operation), Permission: auth.Permission(e.PermissionType),
			})
		}
	}
	return out, nil
}

// DeleteACLs implements backend: DeleteAcls.
func (b *remoteBackend) DeleteACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error) {
	req := kmsg.NewPtrDeleteACLsRequest()
	rf := kmsg.NewDeleteACLsRequestFilter()
	rf.ResourceType, rf.ResourceName = kmsg.ACLResourceType(f.ResourceType), f.ResourceName
	rf.ResourcePatternType = kmsg.ACLResourcePatternType(f.PatternType)
	rf.Principal, rf.Host = f.Principal, f.Host
	rf.Operation, rf.PermissionType = kmsg.ACLOperation(f.Operation), kmsg.ACLPermissionType(f.Permission)
	req.Filters = append(req.Filters, rf)
	resp, err := req.RequestWith(ctx, b.cl)
	if err == nil && len(resp.Results) != 1 {
		err = fmt.Errorf("%d answers for one filter", len(resp.Results))
	}
	if err == nil {
		err = withMessage(kerr.ErrorForCode(resp.Results[0].ErrorCode), deref(resp.Results[0].ErrorMessage))
	}
	if err != nil {
		return nil, fmt.Errorf("delete ACLs on %s: %w", b.broker, err)
	}
	var out []auth.ACL
	for _, m := range resp.Results[0].MatchingACLs {
		out = append(out, auth.ACL{
			ResourceType: auth.ResourceType(m.ResourceType), ResourceName: m.ResourceName,
			PatternType: auth.PatternType(m.ResourcePatternType), Principal: m.Principal, Host: m.Host,
			Operation: auth.Operation(m.Operation), Permission: auth.Permission(m.PermissionType),
		})
	}
	return out, nil
}
