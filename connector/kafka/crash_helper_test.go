package kafka

// crash drops the writer as a killed process would: no transaction is
// ended, every client closes. For tests.
func (w *txnWriter) crash() {
	w.dropSpare()
	if w.cur != nil {
		w.cur.p.cl.Close()
		w.cur = nil
	}
	w.mu.Lock()
	pending := w.pending
	w.pending, w.closed = nil, true
	w.mu.Unlock()
	for _, t := range pending {
		t.p.cl.Close()
	}
	w.ctl.Close()
}
