package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// SCRAM mechanisms as AlterUserScramCredentials and
// DescribeUserScramCredentials number them.
var scramMechByCode = map[int8]auth.Mechanism{1: auth.ScramSHA256, 2: auth.ScramSHA512}

func scramCode(m auth.Mechanism) int8 {
	for c, mm := range scramMechByCode {
		if mm == m {
			return c
		}
	}
	return 0
}

// handleDescribeUserSCRAMCredentials lists users' SCRAM mechanisms and
// iteration counts (never a secret). Users null lists every user; an
// unknown user answers RESOURCE_NOT_FOUND, a user named twice
// DUPLICATE_RESOURCE, as Kafka does.
func (s *Server) handleDescribeUserSCRAMCredentials(req *kmsg.DescribeUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	users := s.creds.Users()
	byName := map[string]auth.UserInfo{}
	for _, u := range users {
		byName[u.Name] = u
	}
	result := func(u auth.UserInfo) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = u.Name
		for _, m := range u.Mechanisms {
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = scramCode(m.Mechanism), int32(m.Iterations)
			r.CredentialInfos = append(r.CredentialInfos, ci)
		}
		return r
	}
	if req.Users == nil {
		for _, u := range users {
			resp.Results = append(resp.Results, result(u))
		}
		return resp
	}
	seen := map[string]int{}
	for _, u := range req.Users {
		seen[u.Name]++
	}
	dupAnswered := map[string]bool{}
	for _, ru := range req.Users {
		if seen[ru.Name] > 1 {
			if !dupAnswered[ru.Name] {
				dupAnswered[ru.Name] = true
				r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
				r.User, r.ErrorCode = ru.Name, kerr.DuplicateResource.Code
				r.ErrorMessage = kmsg.StringPtr("user named more than once")
				resp.Results = append(resp.Results, r)
			}
			continue
		}
		u, ok := byName[ru.Name]
		if !ok {
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode = ru.Name, kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("attempt to describe a user credential that does not exist")
			resp.Results = append(resp.Results, r)
			continue
		}
		resp.Results = append(resp.Results, result(u))
	}
	return resp
}

// handleAlterUserSCRAMCredentials upserts and deletes users' SCRAM
// credentials. An upsertion carries the salt and the salted password
// (never the password); the stored credential is derived from them. A
// user altered twice in one request answers DUPLICATE_RESOURCE; iterations
// outside 4096..16384 UNACCEPTABLE_CREDENTIAL; an unknown mechanism
// UNSUPPORTED_SASL_MECHANISM; deleting a missing credential
// RESOURCE_NOT_FOUND.
func (s *Server) handleAlterUserSCRAMCredentials(ctx context.Context, req *kmsg.AlterUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	count := map[string]int{}
	for _, d := range req.Deletions {
		count[d.Name]++
	}
	for _, u := range req.Upsertions {
		count[u.Name]++
	}
	answered := map[string]bool{}
	answer := func(user string, err error) {
		if answered[user] {
			return
		}
		answered[user] = true
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		if err != nil {
			r.ErrorCode, r.ErrorMessage = scramErrorCode(err), kmsg.StringPtr(err.Error())
		}
		resp.Results = append(resp.Results, r)
	}
	for _, d := range req.Deletions {
		if count[d.Name] > 1 {
			answer(d.Name, errDuplicateUser)
			continue
		}
		m, ok := scramMechByCode[d.Mechanism]
		if !ok {
			answer(d.Name, fmt.Errorf("%w: mechanism %d", auth.ErrUnknownMechanism, d.Mechanism))
			continue
		}
		answer(d.Name, s.creds.Delete(ctx, d.Name, m))
	}
	for _, u := range req.Upsertions {
		if count[u.Name] > 1 {
			answer(u.Name, errDuplicateUser)
			continue
		}
		m, ok := scramMechByCode[u.Mechanism]
		if !ok {
			answer(u.Name, fmt.Errorf("%w: mechanism %d", auth.ErrUnknownMechanism, u.Mechanism))
			continue
		}
		c, err := auth.CredentialFromSalted(m, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err == nil {
			err = s.creds.Set(ctx, u.Name, c)
		}
		if err == nil {
			s.logger.Info("SCRAM credential stored", "user", u.Name, "mechanism", m)
		}
		answer(u.Name, err)
	}
	return resp
}

var errDuplicateUser = errors.New("a user may be altered once per request")

func scramErrorCode(err error) int16 {
	switch {
	case errors.Is(err, errDuplicateUser):
		return kerr.DuplicateResource.Code
	case errors.Is(err, auth.ErrUnknownMechanism):
		return kerr.UnsupportedSaslMechanism.Code
	case errors.Is(err, auth.ErrBadCredential):
		return kerr.UnacceptableCredential.Code
	case errors.Is(err, auth.ErrUnknownUser):
		return kerr.ResourceNotFound.Code
	}
	return errorCode(err)
}
