// Package connector holds what Sluice's connectors share: the Message that
// byte-oriented sources produce and byte-oriented sinks consume. Each
// connector lives in its own subpackage (connector/file, connector/kafka,
// connector/http, connector/postgres, connector/parquet, ...) and implements
// the stream package's Source and Sink interfaces.
package connector
