package exec

import "github.com/sluicehq/sluice/row"

// keyOf is Key (the same bytes) with one allocation instead of two: the
// encoding is built in a buffer on the stack when it fits, then copied
// into the string.
func keyOf(vals []row.Value, idx []int) string {
	if len(idx) == 0 {
		return ""
	}
	var buf [64]byte
	return string(row.Row{Vals: vals}.AppendKey(buf[:0], idx))
}
