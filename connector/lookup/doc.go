// Package lookup joins records with the current value of an external
// table: a PostgreSQL query or Redis keys, looked up per record and
// cached.
//
// A Lookuper answers a batch of keys with the rows of each key: Postgres
// sends one query for the whole batch when the user's query has the shape
// `... WHERE col = $1` (rewritten into `col = ANY($1)`, the key column
// added to the select list so that rows can be matched back to keys by
// an exact canonical text of the key's type: char(n) without its padding,
// numeric digit for digit, real as a float32; a key parameter of another
// type than the built-in scalars, like citext, is not batched), and
// otherwise pipelines one query per key with pgx.Batch; Redis sends one
// MGET (string values) or one pipeline of HGETALL (hashes).
//
// A Client puts a cache in front of a Lookuper: an LRU of at most Size keys
// whose entries, found or not found (negative results are cached too),
// expire TTL after they were fetched. Get deduplicates the keys of a
// batch, answers what the cache holds, sends every miss in one Lookup call
// and retries a failed call with exponential backoff. A key that cannot
// be looked up at all (a value the key column's type cannot hold, a
// Redis key of another type) fails alone: Lookup and Get return the
// others' rows with a *KeyErrors, which is neither retried nor cached.
// A cached entry is stamped with the start of the call that read it. Expiry is measured
// with the Client's clock, which tests replace, so that "stale for at most
// TTL" is checked without sleeping.
//
// The pipeline's `lookup:` step and SQL's FOR SYSTEM_TIME AS OF lookup
// joins against PostgreSQL and Redis tables both run on a Client.
package lookup
