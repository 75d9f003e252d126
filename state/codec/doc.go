// Package codec turns state keys and values into bytes and back, for state
// backends that store bytes (Pebble) and for snapshots.
//
// For returns the codec of a type: hand-written fast paths for strings,
// byte slices, booleans, integers (zig-zag varints), floats, time.Time
// and time.Duration; types that implement encoding.BinaryMarshaler (with a
// pointer receiver implementing encoding.BinaryUnmarshaler) use their own
// encoding; structs, arrays, slices, maps and pointers of supported types
// are encoded field by field through a plan built once per type. A user
// type can also be given an explicit Codec (Func) where a backend takes
// one, which is the way to plug a faster or versioned encoding.
//
// Every encoding is self-delimiting, so values can be concatenated and
// decoded one after the other. Encodings are stable: state written by one
// version of Sluice is readable by the next.
package codec
