package pipeline

import (
	"strings"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/nats"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file wires connector/nats to `nats:` source and sink blocks.

var natsKeys = []string{"url", "username", "password", "token", "jetstream", "subject"}

type natsSourceConfig struct {
	cfg        nats.SourceConfig
	ackWaitSet bool
}

func parseNATSSource(e *errs, o *obj) sourceConfig {
	c := &natsSourceConfig{}
	c.cfg.URL = o.reqStr("url", "the server, like nats://127.0.0.1:4222")
	c.cfg.JetStream = o.boolean("jetstream", true)
	c.cfg.Subject = o.str("subject", "")
	c.cfg.Username = o.str("username", "")
	c.cfg.Password = o.str("password", "")
	c.cfg.Token = o.str("token", "")
	if c.cfg.JetStream {
		c.cfg.Stream = o.reqStr("stream", "the JetStream stream to read")
		c.cfg.Durable = o.reqStr("durable", "the durable consumer's name (owned by this pipeline)")
		if strings.ContainsAny(c.cfg.Durable, ".*> \t") {
			e.at(o.get("durable"), o.sub("durable"), "must not contain '.', '*', '>' or whitespace")
		}
		c.cfg.Batch = int(o.integer("batch", nats.DefaultBatch, 1, 1<<20))
		c.cfg.MaxAckPending = int(o.integer("max_ack_pending", nats.DefaultMaxAckPending, 1, 1<<30))
		c.ackWaitSet = o.has("ack_wait")
		c.cfg.AckWait = o.duration("ack_wait", nats.DefaultAckWait, true)
		if o.enum("start", "all", "all", "new") == "new" {
			c.cfg.Start = nats.StartNew
		}
		for _, k := range []string{"queue", "max_in_flight"} {
			if o.has(k) {
				e.at(o.get(k), o.sub(k), "is for core NATS (jetstream: false)")
			}
		}
		o.done(append(natsKeys, "stream", "durable", "batch", "max_ack_pending", "ack_wait", "start", "queue", "max_in_flight")...)
		return c
	}
	if c.cfg.Subject == "" {
		e.at(o.node, o.sub("subject"), "is required with jetstream: false: the subject to subscribe to (wildcards allowed)")
	}
	c.cfg.Queue = o.str("queue", "")
	c.cfg.MaxInFlight = int(o.integer("max_in_flight", nats.DefaultMaxInFlight, 1, 1<<24))
	for _, k := range []string{"stream", "durable", "batch", "max_ack_pending", "ack_wait", "start"} {
		if o.has(k) {
			e.at(o.get(k), o.sub(k), "is for JetStream (jetstream: true)")
		}
	}
	o.done(append(natsKeys, "queue", "max_in_flight", "stream", "durable", "batch", "max_ack_pending", "ack_wait", "start")...)
	return c
}

func (c *natsSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Name = "sluice-" + bc.pipeline
	cfg.AckOnCheckpoint = bc.checkpointInterval > 0
	if !c.ackWaitSet && cfg.JetStream {
		// Long enough that a message normally is acknowledged (its
		// checkpoint completes) before the server sends it again.
		cfg.AckWait = max(nats.DefaultAckWait, 4*bc.checkpointInterval)
	}
	cfg.Logger = bc.host.logger()
	return nats.NewSource(cfg)
}

type natsSinkConfig struct {
	cfg        nats.SinkConfig
	subject    string
	subjectPos Pos
}

func parseNATSSink(e *errs, o *obj) sinkConfig {
	c := &natsSinkConfig{}
	c.cfg.URL = o.reqStr("url", "the server, like nats://127.0.0.1:4222")
	c.cfg.JetStream = o.boolean("jetstream", true)
	c.subject = o.reqStr("subject", "the subject to publish to; {field} takes a field's value, like orders.{region}")
	c.subjectPos = o.pos("subject")
	if c.subject != "" {
		lits, fields, err := parseTemplate(c.subject)
		if err != nil {
			e.at(o.get("subject"), o.sub("subject"), "%v", err)
		} else if strings.ContainsAny(strings.Join(lits, ""), "*> \t") {
			e.at(o.get("subject"), o.sub("subject"), "wildcards (*, >) and whitespace are not allowed in a subject to publish to")
		} else if len(fields) == 0 {
			if err := nats.ValidateSubject(c.subject); err != nil {
				e.at(o.get("subject"), o.sub("subject"), "%v", err)
			}
		}
	}
	c.cfg.Username = o.str("username", "")
	c.cfg.Password = o.str("password", "")
	c.cfg.Token = o.str("token", "")
	c.cfg.MaxInFlight = int(o.integer("max_in_flight", nats.DefaultSinkMaxInFlight, 1, 1<<20))
	c.cfg.AckTimeout = o.duration("ack_timeout", nats.DefaultAckTimeout, true)
	o.done(append(natsKeys, "max_in_flight", "ack_timeout")...)
	return c
}

func (c *natsSinkConfig) keyTemplate() (string, Pos) {
	if _, fields, err := parseTemplate(c.subject); err == nil && len(fields) == 0 {
		return "", c.subjectPos // a plain subject: no rendering per record
	}
	return c.subject, c.subjectPos
}
func (c *natsSinkConfig) checkKey(k []byte) error  { return nats.ValidateSubject(string(k)) }
func (c *natsSinkConfig) exactlyOnceCapable() bool { return c.cfg.JetStream }
func (c *natsSinkConfig) bytes() bool              { return true }
func (c *natsSinkConfig) messageKey() string       { return "" }
func (c *natsSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	if _, fields, err := parseTemplate(c.subject); err == nil && len(fields) == 0 {
		cfg.Subject = c.subject
	}
	cfg.IDPrefix = "sluice-" + bc.pipeline
	cfg.ExactlyOnce = bc.exactlyOnce && cfg.JetStream
	cfg.Logger = bc.host.logger()
	return nats.NewSink(cfg)
}
func (c *natsSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}
