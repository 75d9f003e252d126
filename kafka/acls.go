package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// The ACL admin APIs: CreateAcls, DescribeAcls and DeleteAcls (v0-3),
// over the server's auth.ACLStore. Without an authorizer they answer
// SECURITY_DISABLED, as Kafka does; an ACL or filter Kafka refuses
// answers INVALID_REQUEST with the reason. Who may call them (ALTER or
// DESCRIBE on the cluster) is checked in authorize.go.

// securityDisabled is the message of SECURITY_DISABLED answers.
const securityDisabled = "No Authorizer is configured."

// aclFromCreation converts a CreateAcls creation.
func aclFromCreation(c *kmsg.CreateACLsRequestCreation) auth.ACL {
	return auth.ACL{
		ResourceType: auth.ResourceType(c.ResourceType), ResourceName: c.ResourceName,
		PatternType: auth.PatternType(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
		Operation: auth.Operation(c.Operation), Permission: auth.Permission(c.PermissionType),
	}
}

// aclFilter converts the fields DescribeAcls and DeleteAcls filters share.
func aclFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) auth.Filter {
	return auth.Filter{
		ResourceType: auth.ResourceType(rt), ResourceName: name, PatternType: auth.PatternType(pt),
		Principal: principal, Host: host, Operation: auth.Operation(op), Permission: auth.Permission(perm),
	}
}

// aclErrorCode maps an ACL store error to a Kafka error code.
func aclErrorCode(err error) int16 {
	if errors.Is(err, auth.ErrInvalidACL) {
		return kerr.InvalidRequest.Code
	}
	return errorCode(err)
}

// handleCreateACLs stores the creations; each is answered in its place.
func (s *Server) handleCreateACLs(ctx context.Context, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	var valid []auth.ACL
	var at []int
	for i := range req.Creations {
		r := &resp.Results[i]
		*r = kmsg.NewCreateACLsResponseResult()
		if s.authz == nil {
			r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabled)
			continue
		}
		a := aclFromCreation(&req.Creations[i])
		if err := a.Validate(); err != nil {
			r.ErrorCode, r.ErrorMessage = aclErrorCode(err), kmsg.StringPtr(err.Error())
			continue
		}
		valid, at = append(valid, a), append(at, i)
	}
	if len(valid) == 0 {
		return resp
	}
	if err := s.acls.Add(ctx, valid...); err != nil {
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = aclErrorCode(err), kmsg.StringPtr(err.Error())
		}
		return resp
	}
	for _, a := range valid {
		s.logger.Info("ACL created", "acl", a.String())
	}
	return resp
}

// handleDescribeACLs lists the ACLs the filter matches, grouped by
// resource pattern.
func (s *Server) handleDescribeACLs(req *kmsg.DescribeACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if s.authz == nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabled)
		return resp
	}
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = aclErrorCode(err), kmsg.StringPtr(err.Error())
		return resp
	}
	for _, a := range s.acls.ACLs(f) { // sorted: one resource's ACLs are adjacent
		n := len(resp.Resources)
		if n == 0 || !sameResource(&resp.Resources[n-1], a) {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			r.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			resp.Resources = append(resp.Resources, r)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host = a.Principal, a.Host
		e.Operation, e.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	return resp
}

func sameResource(r *kmsg.DescribeACLsResponseResource, a auth.ACL) bool {
	return r.ResourceType == kmsg.ACLResourceType(a.ResourceType) && r.ResourceName == a.ResourceName &&
		r.ResourcePatternType == kmsg.ACLResourcePatternType(a.PatternType)
}

// handleDeleteACLs deletes what each filter matches and reports it per
// filter.
func (s *Server) handleDeleteACLs(ctx context.Context, req *kmsg.DeleteACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	var filters []auth.Filter
	var at []int
	for i := range req.Filters {
		r := &resp.Results[i]
		*r = kmsg.NewDeleteACLsResponseResult()
		if s.authz == nil {
			r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabled)
			continue
		}
		rf := &req.Filters[i]
		f := aclFilter(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if err := f.Validate(); err != nil {
			r.ErrorCode, r.ErrorMessage = aclErrorCode(err), kmsg.StringPtr(err.Error())
			continue
		}
		filters, at = append(filters, f), append(at, i)
	}
	if len(filters) == 0 {
		return resp
	}
	matched, err := s.acls.Delete(ctx, filters...)
	for j, i := range at {
		r := &resp.Results[i]
		if err != nil {
			r.ErrorCode, r.ErrorMessage = aclErrorCode(err), kmsg.StringPtr(err.Error())
			continue
		}
		for _, a := range matched[j] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host = a.Principal, a.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			r.MatchingACLs = append(r.MatchingACLs, m)
			s.logger.Info("ACL deleted", "acl", a.String())
		}
	}
	return resp
}
