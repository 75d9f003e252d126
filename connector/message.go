package connector

// Header is one key/value header of a message.
type Header struct {
	Key   string
	Value []byte
}

// Message is one record as a byte-oriented source reads it (a log or Kafka
// record, a line of a file, a record of an HTTP request) or as a
// byte-oriented sink writes it. The pipeline's format step (json, csv, raw)
// turns it into a row and back.
type Message struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp int64 // epoch milliseconds; 0 when the source has none
	// Origin names where the message came from, for dead letters and
	// errors: "topic/partition", a file path, "http".
	Origin string
	// Offset is the message's position within Origin (log offset, line
	// number, request sequence), or -1.
	Offset int64
}
