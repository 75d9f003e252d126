package pipeline

import (
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/mqtt"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file wires connector/mqtt to `mqtt:` source and sink blocks.

var mqttKeys = []string{"url", "username", "password", "client_id", "qos", "max_in_flight"}

type mqttSourceConfig struct {
	cfg         mqtt.SourceConfig
	clientIDSet bool
	ackOnRead   bool
}

func parseMQTTSource(e *errs, o *obj) sourceConfig {
	c := &mqttSourceConfig{}
	c.cfg.URL = o.reqStr("url", "the broker, like tcp://127.0.0.1:1883")
	c.cfg.Topics = o.strList("topics")
	if !o.has("topics") || len(c.cfg.Topics) == 0 {
		e.at(o.node, o.sub("topics"), "is required: a list of topic filters, like [\"sensors/+/temp\"]")
	}
	for _, t := range c.cfg.Topics {
		if err := mqtt.ValidateFilter(t); err != nil {
			e.at(o.get("topics"), o.sub("topics"), "%v", err)
		}
	}
	c.cfg.QoS = byte(o.integer("qos", 1, 0, 2))
	c.cfg.ClientID = o.str("client_id", "")
	c.clientIDSet = c.cfg.ClientID != ""
	c.cfg.CleanSession = o.boolean("clean_session", false)
	c.cfg.Username = o.str("username", "")
	c.cfg.Password = o.str("password", "")
	c.cfg.MaxInFlight = int(o.integer("max_in_flight", mqtt.DefaultMaxInFlight, 1, 1<<24))
	c.cfg.TopicField = o.str("topic_field", "")
	c.ackOnRead = o.enum("ack", "checkpoint", "checkpoint", "read") == "read"
	o.done(append(mqttKeys, "topics", "clean_session", "topic_field", "ack")...)
	return c
}

func (c *mqttSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	if !c.clientIDSet {
		// Stable across runs: the broker keeps the session under it.
		cfg.ClientID = "sluice-" + bc.pipeline
	}
	// Under checkpointing a message is acknowledged once the checkpoint
	// covering it completes; without, as it is read.
	cfg.AckOnCheckpoint = bc.checkpointInterval > 0 && !c.ackOnRead
	cfg.Logger = bc.host.logger()
	return mqtt.NewSource(cfg)
}

type mqttSinkConfig struct {
	cfg         mqtt.SinkConfig
	clientIDSet bool
	topic       string
	topicPos    Pos
}

func parseMQTTSink(e *errs, o *obj) sinkConfig {
	c := &mqttSinkConfig{}
	c.cfg.URL = o.reqStr("url", "the broker, like tcp://127.0.0.1:1883")
	c.topic = o.reqStr("topic", "the topic to publish to; {field} takes a field's value, like alerts/{device}")
	c.topicPos = o.pos("topic")
	if c.topic != "" {
		lits, _, err := parseTemplate(c.topic)
		if err != nil {
			e.at(o.get("topic"), o.sub("topic"), "%v", err)
		}
		for _, l := range lits {
			if err := mqtt.ValidateTopic("x" + l); err != nil {
				e.at(o.get("topic"), o.sub("topic"), "wildcards (+, #) are not allowed in a topic to publish to")
				break
			}
		}
	}
	c.cfg.QoS = byte(o.integer("qos", 1, 0, 2))
	c.cfg.Retain = o.boolean("retain", false)
	c.cfg.ClientID = o.str("client_id", "")
	c.clientIDSet = c.cfg.ClientID != ""
	c.cfg.Username = o.str("username", "")
	c.cfg.Password = o.str("password", "")
	c.cfg.MaxInFlight = int(o.integer("max_in_flight", mqtt.DefaultSinkMaxInFlight, 1, 1<<20))
	o.done(append(mqttKeys, "topic", "retain")...)
	return c
}

func (c *mqttSinkConfig) keyTemplate() (string, Pos) { return c.topic, c.topicPos }
func (c *mqttSinkConfig) checkKey(k []byte) error    { return mqtt.ValidateTopic(string(k)) }
func (c *mqttSinkConfig) bytes() bool                { return true }
func (c *mqttSinkConfig) messageKey() string         { return "" }
func (c *mqttSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	if !c.clientIDSet {
		cfg.ClientID = "sluice-" + bc.pipeline + "-sink"
	}
	cfg.Logger = bc.host.logger()
	return mqtt.NewSink(cfg)
}
func (c *mqttSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}
