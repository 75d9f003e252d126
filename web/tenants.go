package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/auth"
)

// The tenant admin API (Config.Tenants), Pulsar's admin API for tenants
// and namespaces on the server's HTTP listener:
//
//	GET    /api/v1/tenants                                  tenants and namespaces
//	PUT    /api/v1/tenants/{tenant}                         create, or set its members
//	DELETE /api/v1/tenants/{tenant}                         delete (without namespaces)
//	PUT    /api/v1/tenants/{tenant}/namespaces/{namespace}  create, or set its limits
//	DELETE /api/v1/tenants/{tenant}/namespaces/{namespace}  delete
//
// Changes are written to the registry's internal topic before the answer,
// and the Kafka listener sharing the registry applies them from its next
// request. Only the static --http-token and super users (Config.SuperUser)
// may use it, reading included: membership is security configuration.

// TenantJSON is a tenant in the admin API.
type TenantJSON struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// NamespaceJSON is a namespace and its limits in the admin API; a zero or
// absent limit is none. Retention is a Go duration ("48h").
type NamespaceJSON struct {
	Tenant      string  `json:"tenant"`
	Name        string  `json:"name"`
	Retention   string  `json:"retention,omitempty"`
	MaxStorage  int64   `json:"max_storage,omitempty"`
	OnFull      string  `json:"on_full,omitempty"`
	ProduceRate float64 `json:"produce_rate,omitempty"`
	FetchRate   float64 `json:"fetch_rate,omitempty"`
}

// TenantList is the body of GET /api/v1/tenants.
type TenantList struct {
	Tenants    []TenantJSON    `json:"tenants"`
	Namespaces []NamespaceJSON `json:"namespaces"`
}

func namespaceJSON(n auth.Namespace) NamespaceJSON {
	j := NamespaceJSON{Tenant: n.Tenant, Name: n.Name, MaxStorage: n.MaxStorage, OnFull: n.OnFull, ProduceRate: n.ProduceRate, FetchRate: n.FetchRate}
	if n.Retention > 0 {
		j.Retention = n.Retention.String()
	}
	if j.OnFull == "" && n.MaxStorage > 0 {
		j.OnFull = auth.OnFullRefuse
	}
	return j
}

func (s *Server) registerTenantAPI(t *auth.Tenants) {
	s.Mux.HandleFunc("GET /api/v1/tenants", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		ts, nss := t.List()
		out := TenantList{Tenants: []TenantJSON{}, Namespaces: []NamespaceJSON{}}
		for _, x := range ts {
			out.Tenants = append(out.Tenants, TenantJSON{Name: x.Name, Members: append([]string{}, x.Members...)})
		}
		for _, n := range nss {
			out.Namespaces = append(out.Namespaces, namespaceJSON(n))
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.Mux.HandleFunc("PUT /api/v1/tenants/{tenant}", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Members []string `json:"members"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		x := auth.Tenant{Name: r.PathValue("tenant"), Members: body.Members}
		if err := t.PutTenant(r.Context(), x); err != nil {
			tenantError(w, err)
			return
		}
		x, _ = t.Tenant(x.Name)
		s.logger.Info("tenant set", "tenant", x.Name, "members", strings.Join(x.Members, ","), "by", PrincipalFrom(r.Context()))
		writeJSON(w, http.StatusOK, TenantJSON{Name: x.Name, Members: append([]string{}, x.Members...)})
	}))
	s.Mux.HandleFunc("DELETE /api/v1/tenants/{tenant}", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("tenant")
		if err := t.DeleteTenant(r.Context(), name); err != nil {
			tenantError(w, err)
			return
		}
		s.logger.Info("tenant deleted", "tenant", name, "by", PrincipalFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
	s.Mux.HandleFunc("PUT /api/v1/tenants/{tenant}/namespaces/{namespace}", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		var body NamespaceJSON
		if !decodeBody(w, r, &body) {
			return
		}
		n := auth.Namespace{Tenant: r.PathValue("tenant"), Name: r.PathValue("namespace"), MaxStorage: body.MaxStorage,
			ProduceRate: body.ProduceRate, FetchRate: body.FetchRate, OnFull: body.OnFull}
		if (body.Tenant != "" && body.Tenant != n.Tenant) || (body.Name != "" && body.Name != n.Name) {
			writeError(w, http.StatusBadRequest, "the body names namespace %s/%s, the path %s/%s", body.Tenant, body.Name, n.Tenant, n.Name)
			return
		}
		if body.Retention != "" {
			d, err := time.ParseDuration(body.Retention)
			if err != nil {
				writeError(w, http.StatusBadRequest, "retention %q: want a duration like 48h", body.Retention)
				return
			}
			n.Retention = d
		}
		if n.OnFull == auth.OnFullRefuse {
			n.OnFull = "" // the default, stored as such
		}
		if err := auth.ValidTenantName(n.Tenant); err != nil {
			tenantError(w, err)
			return
		}
		if err := t.PutNamespace(r.Context(), n); err != nil {
			tenantError(w, err)
			return
		}
		s.logger.Info("namespace set", "tenant", n.Tenant, "namespace", n.Name, "by", PrincipalFrom(r.Context()))
		writeJSON(w, http.StatusOK, namespaceJSON(n))
	}))
	s.Mux.HandleFunc("DELETE /api/v1/tenants/{tenant}/namespaces/{namespace}", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		tenant, name := r.PathValue("tenant"), r.PathValue("namespace")
		if err := t.DeleteNamespace(r.Context(), tenant, name); err != nil {
			tenantError(w, err)
			return
		}
		s.logger.Info("namespace deleted", "tenant", tenant, "namespace", name, "by", PrincipalFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
}

// tenantAdmin lets only the static token's principal and super users
// through to h; everyone else gets 403 saying who may.
func (s *Server) tenantAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := PrincipalFrom(r.Context())
		switch {
		case p == "":
			s.refused(r, "forbidden", p)
			writeError(w, http.StatusForbidden, "the tenant and token admin API needs an authenticated super user: start sluice serve with --http-token and send it, or a token of a --super-user principal, as Authorization: Bearer TOKEN")
			return
		case staticToken(r.Context()) || s.cfg.SuperUser != nil && s.cfg.SuperUser(p):
			h(w, r)
		default:
			s.refused(r, "forbidden", p)
			writeError(w, http.StatusForbidden, "%s may not manage tenants or tokens: only the --http-token and --super-user principals may", p)
		}
	}
}

// decodeBody reads a JSON object into v, answering 400 when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", mbe.Limit)
			return false
		}
		writeError(w, http.StatusBadRequest, "malformed JSON body: %v", err)
		return false
	}
	return true
}

// tenantError answers an error of the tenant registry: 404 for a missing
// tenant or namespace, 400 for a bad request, 500 for a failed write.
func tenantError(w http.ResponseWriter, err error) {
	switch {
	case auth.IsNotFound(err):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, auth.ErrTenant):
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, "writing the tenant registry: %v", err)
	}
}

// The token admin API (Config.TokenAdmin), for the same principals:
//
//	GET    /api/v1/tokens        the tokens' ids and principals, never the tokens
//	POST   /api/v1/tokens        {"principal":"User:NAME","ttl":"720h"}: a new token, shown once
//	DELETE /api/v1/tokens/{id}   revoke
//
// A token created or revoked is accepted or refused from the next request
// (the server's Tokens is the same store).

// CreatedToken is the answer to POST /api/v1/tokens.
type CreatedToken struct {
	Token string `json:"token"`
	auth.TokenInfo
}

func (s *Server) registerTokenAPI(t *auth.Tokens) {
	s.Mux.HandleFunc("GET /api/v1/tokens", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, t.List())
	}))
	s.Mux.HandleFunc("POST /api/v1/tokens", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Principal string `json:"principal"`
			TTL       string `json:"ttl"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		var ttl time.Duration
		if body.TTL != "" {
			d, err := time.ParseDuration(body.TTL)
			if err != nil {
				writeError(w, http.StatusBadRequest, "ttl %q: want a duration like 720h", body.TTL)
				return
			}
			ttl = d
		}
		token, info, err := t.Create(r.Context(), body.Principal, ttl)
		if err != nil {
			tokenError(w, err)
			return
		}
		s.logger.Info("token created", "id", info.ID, "principal", info.Principal, "by", PrincipalFrom(r.Context()))
		writeJSON(w, http.StatusCreated, CreatedToken{Token: token, TokenInfo: info})
	}))
	s.Mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.tenantAdmin(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := t.Revoke(r.Context(), id); err != nil {
			tokenError(w, err)
			return
		}
		s.logger.Info("token revoked", "id", id, "by", PrincipalFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
}

func tokenError(w http.ResponseWriter, err error) {
	switch {
	case auth.IsNotFound(err):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, auth.ErrToken):
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, "writing the token store: %v", err)
	}
}
