package schema

import (
	"net/http"
)

// config serves /config and /config/{subject}.
func (h *Handler) config(c *request, segs []string) {
	if len(segs) > 1 {
		c.notFound()
		return
	}
	subject := ""
	if len(segs) == 1 {
		subject = segs[0]
	}
	switch c.r.Method {
	case http.MethodGet:
		cfg, err := h.reg.Config(subject, c.flag("defaultToGlobal"))
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, cfg)
	case http.MethodPut:
		b, err := c.body()
		if err != nil {
			c.fail(err)
			return
		}
		cfg, err := decodeConfigRequest(b)
		if err != nil {
			c.fail(err)
			return
		}
		if err := h.reg.SetConfig(c.r.Context(), subject, cfg); err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, struct {
			Compatibility Level `json:"compatibility"`
			Normalize     bool  `json:"normalize,omitempty"`
		}{cfg.Compatibility, cfg.Normalize})
	case http.MethodDelete:
		cfg, err := h.reg.DeleteConfig(c.r.Context(), subject)
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, cfg)
	default:
		c.methodNotAllowed()
	}
}

// mode serves /mode and /mode/{subject}.
func (h *Handler) mode(c *request, segs []string) {
	if len(segs) > 1 {
		c.notFound()
		return
	}
	subject := ""
	if len(segs) == 1 {
		subject = segs[0]
	}
	type modeJSON struct {
		Mode Mode `json:"mode"`
	}
	switch c.r.Method {
	case http.MethodGet:
		m, err := h.reg.Mode(subject, c.flag("defaultToGlobal"))
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, modeJSON{m})
	case http.MethodPut:
		b, err := c.body()
		if err != nil {
			c.fail(err)
			return
		}
		m, err := decodeModeRequest(b)
		if err != nil {
			c.fail(err)
			return
		}
		if err := h.reg.SetMode(c.r.Context(), subject, m, c.flag("force")); err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, modeJSON{m})
	case http.MethodDelete:
		m, err := h.reg.DeleteMode(c.r.Context(), subject)
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, modeJSON{m})
	default:
		c.methodNotAllowed()
	}
}
