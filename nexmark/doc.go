// Package nexmark implements the Nexmark streaming benchmark for Sluice: a
// deterministic event generator faithful to the generator of the Flink
// nexmark project (github.com/nexmark/nexmark), the event model (Person,
// Auction, Bid) with the reference's field names, and a JSON line codec in
// the shape of the reference's generated table.
//
// # Events are a pure function of their number
//
// The reference generator walks a sequence of event numbers; the kind of
// event (person, auction or bid) follows from the number modulo the total
// proportion (1:3:46 by default), ids are derived arithmetically from the
// number, and the event time is BaseTime plus the number times the
// inter-event delay implied by the rate. Only the remaining attributes
// (names, prices, which hot or random auction a bid goes to, ...) are drawn
// from a random source. Here that random source is seeded per event from
// (Config.Seed, event id), so event n is identical whichever generator
// produces it. A run of N events can therefore be cut into any number of
// contiguous splits ([SplitRange]) that generate in parallel and together
// yield exactly the events of the unsplit run.
//
// # Allocation
//
// [Generator.Next] fills a caller-owned [Event] in place. Strings that are
// not constants (e-mail addresses, item names, extras, ...) are carved out of
// chunked byte arenas owned by the generator (one per event type, so that
// state holding bids does not keep auction strings alive), so a generator
// allocates about once every hundred events; a string stays valid for as
// long as it is referenced (the arena chunk it lives in is never written
// again).
//
// # JSON
//
// [AppendJSON] encodes one event as one JSON object:
//
//	{"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,...}}
//
// with times as epoch milliseconds, and [Decoder] / [UnmarshalEvent] read such
// lines back. [GenerateJSON] writes a whole run as JSON lines; it backs the
// `sluice nexmark generate` command.
//
// docs/nexmark.md lists every generator parameter, its value and where the
// reference defines it.
package nexmark
