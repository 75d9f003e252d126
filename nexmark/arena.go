package nexmark

import "unsafe"

// arenaChunk is the size of the byte chunks strings are carved from: with
// the default mix an event needs about 100 bytes of strings, so a generator
// allocates once every ~160 events.
const arenaChunk = 16 << 10

// stringArena hands out strings carved from large byte chunks, so that
// building a string costs no allocation of its own. Bytes handed out are
// never written again, which is what makes the unsafe conversion sound; a
// chunk is freed by the garbage collector once no string references it.
type stringArena struct {
	buf []byte // len(buf) bytes of the current chunk are handed out
}

// reserve returns an empty slice with room for n bytes. The caller appends
// at most n bytes to it and passes the result to commit before the next
// reserve.
func (a *stringArena) reserve(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(arenaChunk, n))
	}
	return a.buf[len(a.buf):len(a.buf):cap(a.buf)]
}

// commit returns the bytes appended to the last reserve slice as a string.
func (a *stringArena) commit(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	free := a.buf[len(a.buf):cap(a.buf)]
	if len(b) > len(free) || unsafe.SliceData(b) != unsafe.SliceData(free) {
		// The caller outgrew its reservation and append moved b to
		// memory of its own, which nothing else references.
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	a.buf = a.buf[:len(a.buf)+len(b)]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// copyString returns a string with the bytes of b, carved from the arena.
func (a *stringArena) copyString(b []byte) string {
	r := a.reserve(len(b))
	r = append(r, b...)
	return a.commit(r)
}
