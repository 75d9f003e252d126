// Package mqtt connects pipelines to MQTT brokers (MQTT 3.1.1, through
// github.com/eclipse/paho.mqtt.golang): a Source that subscribes to topic
// filters and a Sink that publishes.
//
// # Source
//
// One client, one split. The source subscribes to its topic filters (with
// + and # wildcards) at the configured QoS on every connection. With
// CleanSession off (the pipeline default) the broker keeps the session
// under ClientID while the pipeline is down: its subscriptions and the QoS
// 1 and 2 messages published meanwhile, which it delivers on the next
// connection (up to the broker's queue limit: Mosquitto's
// max_queued_messages, 1000 by default, drops beyond it).
//
// A message becomes a connector.Message whose key and mqtt_topic header
// are its topic, whose value is its payload and whose timestamp is the
// time it was received (MQTT 3.1.1 carries none). With TopicField set, the
// topic is also added to JSON object payloads as a field.
//
// Acknowledgement. Automatic acknowledgement is off. With AckOnCheckpoint
// (the pipeline sets it under checkpointing) the PUBACK (QoS 1) or PUBREC
// (QoS 2) of a message is sent only when the checkpoint that covers it has
// completed (stream.PositionCommitter), in arrival order as MQTT requires.
// A message the pipeline read but whose checkpoint did not complete is
// still unacknowledged at the broker, which sends it again on the next
// connection: nothing read at QoS 1 or 2 is lost. The guarantee is
// at-least-once, not exactly-once: MQTT has no replayable position and no
// message identity that outlives a connection (packet ids are reused), so
// a crash between a checkpoint's completion and its acknowledgements
// reaching the broker delivers those messages again, and nothing can tell
// them from new ones. After a reconnection within one run, resends of
// messages the source still holds (same packet id, DUP flag) are
// recognised and not passed on twice. QoS 0 is at-most-once.
//
// The split's position is a sequence number of this run only; a restored
// position is ignored because the broker's session, not the checkpoint,
// holds what was not acknowledged.
//
// In-flight messages are bounded by MaxInFlight: once that many are held
// unacknowledged the client stops reading from the broker. The broker
// bounds them too (Mosquitto's max_inflight_messages, 20 by default, per
// client): with acknowledgements held until a checkpoint completes, a QoS
// 1 source moves at most that many messages per checkpoint interval
// unless the broker's limit is raised (0 means unlimited in Mosquitto).
//
// Connections are kept by paho's automatic reconnection with exponential
// backoff up to MaxReconnectInterval; every loss is logged (a warning
// naming the broker) and counted.
//
// # Sink
//
// The sink publishes each message to its key as the topic (the pipeline
// renders the spec's topic template, "alerts/{device}", into the key) or
// to the configured topic, at the configured QoS and retain flag; a topic
// MQTT cannot carry (over 65535 bytes, not UTF-8, wildcards) fails the
// write. At most
// MaxInFlight publishes are unacknowledged; at a checkpoint barrier the
// sink waits for all of them, so a completed checkpoint's records are at
// the broker: at-least-once at QoS 1 and 2 (a replay after a failure
// publishes again), at-most-once at QoS 0 (paho drops QoS 0 publishes
// while reconnecting). A QoS 1/2 sink keeps its session (clean session
// off) so that publishes in flight at a disconnection are sent again.
package mqtt
