package connect

// FormatTimestamp renders epoch milliseconds as SQL writes a TIMESTAMP(3)
// (yyyy-MM-dd HH:mm:ss.SSS, UTC), for result tables.
func FormatTimestamp(ms int64) string {
	return string(appendTimestamp(nil, ms, false, true))
}
