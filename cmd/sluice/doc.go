// Command sluice is the single binary of Sluice: the embedded durable log
// and its Kafka-protocol server, pipelines, benchmarks and the tools to
// inspect them. Run `sluice --help` for the command list; every command
// answers --help.
//
// Exit status: 0 on success, 1 on failure, 2 on bad usage.
package main
