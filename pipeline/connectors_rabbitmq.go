package pipeline

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/rabbitmq"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file wires connector/rabbitmq to `rabbitmq:` source and sink
// blocks.

type rabbitSourceConfig struct{ cfg rabbitmq.SourceConfig }

func parseRabbitSource(e *errs, o *obj) sourceConfig {
	c := &rabbitSourceConfig{}
	c.cfg.URL = o.reqStr("url", "the broker's AMQP URL, like amqp://guest:guest@127.0.0.1:5672/")
	checkAMQPURL(e, o, c.cfg.URL)
	c.cfg.Queue = o.reqStr("queue", "the queue to consume")
	c.cfg.Prefetch = int(o.integer("prefetch", rabbitmq.DefaultPrefetch, 1, 65535))
	c.cfg.Dedup = o.boolean("dedup", false)
	c.cfg.PollInterval = o.duration("poll_interval", 0, false)
	if d := o.object("declare", "how to declare the queue"); d != nil {
		c.cfg.Declare = &rabbitmq.Declare{
			Durable:    d.boolean("durable", true),
			AutoDelete: d.boolean("auto_delete", false),
			QueueType:  d.enum("queue_type", "classic", "classic", "quorum", "stream"),
		}
		if v := d.get("bindings"); v != nil {
			if v.Kind != yaml.SequenceNode {
				e.at(v, d.sub("bindings"), "must be a list of {exchange, routing_key}, not %s", describe(v))
			} else {
				for i, it := range v.Content {
					b := newObj(e, it, fmt.Sprintf("%s[%d]", d.sub("bindings"), i), "a binding: {exchange, routing_key}")
					if b == nil {
						continue
					}
					c.cfg.Declare.Bindings = append(c.cfg.Declare.Bindings, rabbitmq.Binding{
						Exchange:   b.reqStr("exchange", "the exchange to bind the queue to"),
						RoutingKey: b.str("routing_key", ""),
					})
					b.done("exchange", "routing_key")
				}
			}
		}
		d.done("durable", "auto_delete", "queue_type", "bindings")
	}
	o.done("url", "queue", "prefetch", "dedup", "poll_interval", "declare")
	return c
}

func checkAMQPURL(e *errs, o *obj, url string) {
	if url == "" {
		return
	}
	if err := rabbitmq.CheckURL(url); err != nil {
		e.at(o.get("url"), o.sub("url"), "%v; want amqp://user:pass@host:5672/vhost", err)
	}
}

func (c *rabbitSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	// With checkpoints, messages are acknowledged once the checkpoint
	// covering them completes (the runtime calls CommitPosition);
	// without, as soon as they are handed to the pipeline.
	cfg.AckOnHandover = bc.checkpointInterval == 0
	return rabbitmq.NewSource(cfg)
}

type rabbitSinkConfig struct {
	cfg rabbitmq.SinkConfig
	// key is the routing key template, keyPos where it is in the spec.
	key    string
	keyPos Pos
}

func parseRabbitSink(e *errs, o *obj) sinkConfig {
	c := &rabbitSinkConfig{}
	c.cfg.URL = o.reqStr("url", "the broker's AMQP URL, like amqp://guest:guest@127.0.0.1:5672/")
	checkAMQPURL(e, o, c.cfg.URL)
	c.cfg.Exchange = o.str("exchange", "")
	c.key = o.reqStr("routing_key", `the routing key, a template over the output fields like "orders.{region}" (with the default exchange "", the queue's name)`)
	c.keyPos = o.pos("routing_key")
	if lits, fields, err := parseTemplate(c.key); err != nil {
		e.at(o.get("routing_key"), o.sub("routing_key"), "%v", err)
	} else if len(fields) == 0 {
		c.cfg.RoutingKey = lits[0]
		if err := rabbitmq.CheckRoutingKey(lits[0]); err != nil {
			e.at(o.get("routing_key"), o.sub("routing_key"), "%v", err)
		}
	}
	c.cfg.Persistent = o.boolean("persistent", true)
	c.cfg.Mandatory = o.boolean("mandatory", true)
	c.cfg.MaxInFlight = int(o.integer("max_in_flight", rabbitmq.DefaultMaxInFlight, 1, 1<<20))
	c.cfg.MessageIDPrefix = o.str("message_id_prefix", "")
	o.done("url", "exchange", "routing_key", "persistent", "mandatory", "max_in_flight", "message_id_prefix")
	return c
}

// keyTemplate implements keyTemplater: a routing key that names fields is
// rendered per record; a fixed one is the sink's RoutingKey.
func (c *rabbitSinkConfig) keyTemplate() (string, Pos) {
	if _, fields, err := parseTemplate(c.key); err == nil && len(fields) == 0 {
		return "", c.keyPos
	}
	return c.key, c.keyPos
}

// checkKey implements keyTemplater: a rendered routing key must fit an
// AMQP short string.
func (c *rabbitSinkConfig) checkKey(k []byte) error { return rabbitmq.CheckRoutingKey(string(k)) }

func (c *rabbitSinkConfig) bytes() bool        { return true }
func (c *rabbitSinkConfig) messageKey() string { return "" }
func (c *rabbitSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	if cfg.MessageIDPrefix == "" {
		// Stable across runs of this pipeline: replayed records get
		// the message-ids they had.
		cfg.MessageIDPrefix = bc.pipeline
	}
	return rabbitmq.NewSink(cfg)
}
func (c *rabbitSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}
