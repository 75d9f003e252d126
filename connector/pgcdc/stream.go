package pgcdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluicehq/sluice/connector"
)

// item is a record (or only a new position) handed from the replication
// goroutine to Read; pos is the position after it.
type item struct {
	msg     connector.Message
	posOnly bool
	pos     *position
}

// reader runs the replication connection on its own goroutine: it
// decodes the changes into records, sends standby status updates with
// the confirmed LSN, and reconnects with backoff when the server goes
// away. Read takes the records from ch.
type reader struct {
	sp      *split
	ch      chan item
	errc    chan error
	confirm chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	pos     *position // the producer's position (after the last item sent)

	// cmp is a plain connection for key comparisons while changes older
	// than a resumed snapshot are filtered (opened when needed).
	cmp *pgconn.PgConn
	// seenXid is a transaction awaitVisible found visible (hasSeen: one
	// was): the later updates of the same transaction do not ask again.
	seenXid uint32
	hasSeen bool

	// Reused by decode (the replication goroutine only): the items of the
	// message being decoded, and its old and new tuples.
	out              []item
	oldVals, newVals []value
	// statusEvery is the session's status update interval: the
	// configured one, at most half the server's wal_sender_timeout.
	statusEvery time.Duration
	// slab holds the positions of the items sent, allocated a few hundred
	// at a time instead of one per change. An item's position is never
	// changed once made, and a slab is never reused (a full one is left
	// to the garbage collector once no item points into it).
	slab []position
}

func newReader(sp *split, pos *position) *reader {
	return &reader{sp: sp, ch: make(chan item, 4096), errc: make(chan error, 1), confirm: make(chan struct{}, 1), done: make(chan struct{}), pos: pos,
		oldVals: make([]value, 0, 16), newVals: make([]value, 0, 16)}
}

// clonePos returns a copy of the producer's position, to be changed and
// then attached to an item.
func (r *reader) clonePos() *position {
	if len(r.slab) == cap(r.slab) {
		r.slab = make([]position, 0, 256)
	}
	r.slab = append(r.slab, *r.pos)
	return &r.slab[len(r.slab)-1]
}

func (r *reader) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if c := r.sp.src.confirmed.Load(); c == 0 {
		// Restored (or fresh) stream positions are confirmed: they come
		// from completed checkpoints or from the slot itself.
		r.sp.src.confirmed.Store(uint64(r.pos.LSN))
	}
	go r.run(ctx)
}

func (r *reader) stop() {
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
}

func (r *reader) confirmNow() {
	select {
	case r.confirm <- struct{}{}:
	default:
	}
}

// read fills dst with records ready now, waiting up to 100ms for the
// first one.
func (r *reader) read(ctx context.Context, dst []connector.Message, sp *split) (int, error) {
	n := 0
	var timer *time.Timer
	for n < len(dst) {
		var it item
		select {
		case it = <-r.ch:
		default:
			// Nothing ready: an error is reported after the records sent
			// before it.
			select {
			case err := <-r.errc:
				return n, err
			default:
			}
			if n > 0 {
				return n, nil
			}
			if timer == nil {
				timer = time.NewTimer(100 * time.Millisecond)
				defer timer.Stop()
			}
			select {
			case it = <-r.ch:
			case err := <-r.errc:
				return n, err
			case <-timer.C:
				return 0, nil
			case <-sp.wake:
				return 0, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		sp.pos = it.pos
		if !it.posOnly {
			dst[n] = it.msg
			n++
		}
	}
	return n, nil
}

// fatalError is an error reconnecting does not cure.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (r *reader) run(ctx context.Context) {
	defer close(r.done)
	defer func() {
		if r.cmp != nil {
			r.cmp.Close(context.Background())
		}
	}()
	log := r.sp.cfg.Logger
	backoff := 250 * time.Millisecond
	for {
		progressed, err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		var fe *fatalError
		if errors.As(err, &fe) || isFatalPgError(err) {
			r.sp.src.stats.Errors.Add(1)
			select {
			case r.errc <- err:
			case <-ctx.Done():
			}
			return
		}
		if progressed {
			backoff = 250 * time.Millisecond
		}
		r.sp.src.stats.Reconnects.Add(1)
		r.sp.src.stats.Errors.Add(1)
		log.Warn("postgres_cdc: replication connection lost; reconnecting", "slot", r.sp.cfg.Slot, "error", err, "retry_in", backoff.String(), "resume_lsn", r.pos.LSN.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, r.sp.cfg.MaxBackoff)
	}
}

// isFatalPgError: errors of the server that a retry will not change
// (a missing slot or publication, a permission, a bad setting), except
// "in use" (the slot of a crashed run is released once the server notices).
func isFatalPgError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case pe.Code == "55006": // object_in_use: the slot is still held
		return false
	case strings.HasPrefix(pe.Code, "42"), strings.HasPrefix(pe.Code, "28"), pe.Code == "55000":
		return true
	}
	return false
}

// txState is the transaction being decoded.
type txState struct {
	active    bool
	finalLSN  pglogrepl.LSN
	xid       uint32
	commitMs  int64
	emitted   int // records produced (emitted or skipped as already emitted)
	skip      int
	filterLSN bool // some key range's snapshot is newer than this commit
}

// session streams from r.pos until the connection fails or ctx ends.
// progressed reports that it got at least one message.
func (r *reader) session(ctx context.Context) (progressed bool, err error) {
	cfg := r.sp.cfg
	conn, err := connect(ctx, cfg.DSN, true)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	r.statusEvery = statusInterval(ctx, conn, cfg.StatusInterval)
	err = pglogrepl.StartReplication(ctx, conn, cfg.Slot, r.pos.LSN, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + cfg.Publication + "'"},
	})
	if err != nil {
		return false, fmt.Errorf("postgres_cdc: starting replication from slot %s at %s: %w", cfg.Slot, r.pos.LSN, err)
	}
	rels := map[uint32]*relation{}
	var tx txState
	nextStatus := time.Now()
	sendStatus := func() error {
		nextStatus = time.Now().Add(r.statusEvery)
		lsn := pglogrepl.LSN(r.sp.src.confirmed.Load())
		if lsn == 0 {
			return nil
		}
		if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn}); err != nil {
			return fmt.Errorf("postgres_cdc: sending a standby status update: %w", err)
		}
		return nil
	}
	if err := sendStatus(); err != nil {
		return false, err
	}
	// Receiving: a read deadline on the connection, moved only when the
	// next status update is due, ends a wait for the update; ctx's end
	// sets a deadline in the past. (A context per ReceiveMessage, as
	// pgconn offers, costs a timer and a watcher per change.)
	nc := conn.Conn()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	defer stop()
	var deadline time.Time
	for {
		select {
		case <-r.confirm:
			if err := sendStatus(); err != nil {
				return progressed, err
			}
		default:
		}
		if !time.Now().Before(nextStatus) {
			if err := sendStatus(); err != nil {
				return progressed, err
			}
		}
		if !deadline.Equal(nextStatus) {
			deadline = nextStatus
			if err := nc.SetReadDeadline(deadline); err != nil {
				return progressed, fmt.Errorf("postgres_cdc: setting the read deadline: %w", err)
			}
			// After the deadline is set: if ctx ends from now on, the
			// AfterFunc's deadline comes after this one.
			if ctx.Err() != nil {
				return progressed, ctx.Err()
			}
		}
		raw, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return progressed, ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return progressed, err
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return progressed, pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyData:
			progressed = true
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return progressed, &fatalError{fmt.Errorf("postgres_cdc: %w", err)}
				}
				r.sp.src.walEnd.Store(uint64(ka.ServerWALEnd))
				// Between transactions everything before the server's
				// WAL end has been sent: the position may move there, so
				// that an idle slot's confirmed LSN follows the WAL.
				if !tx.active && ka.ServerWALEnd > r.pos.LSN && r.pos.TxLSN == 0 {
					p := r.clonePos()
					p.LSN = ka.ServerWALEnd
					r.trimSegs(p)
					if !r.send(ctx, item{posOnly: true, pos: p}, sendStatus) {
						return progressed, ctx.Err()
					}
				}
				if ka.ReplyRequested {
					if err := sendStatus(); err != nil {
						return progressed, err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return progressed, &fatalError{fmt.Errorf("postgres_cdc: %w", err)}
				}
				if uint64(xld.ServerWALEnd) > r.sp.src.walEnd.Load() {
					r.sp.src.walEnd.Store(uint64(xld.ServerWALEnd))
				}
				if err := r.handle(ctx, xld.WALData, rels, &tx, sendStatus); err != nil {
					return progressed, err
				}
			}
		default:
			// NoticeResponse and the like.
		}
	}
}

// statusInterval is how often a session sends status updates: every,
// or half the server's wal_sender_timeout when that is shorter, so that a
// session whose queue is full (updates sent on a timer only, no keep-alive
// answered) is not ended by the server as silent.
func statusInterval(ctx context.Context, conn *pgconn.PgConn, every time.Duration) time.Duration {
	res, err := conn.Exec(ctx, "SHOW wal_sender_timeout").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return every
	}
	if t := parseGUCDuration(string(res[0].Rows[0][0])); t > 0 && t/2 < every {
		return max(t/2, 10*time.Millisecond)
	}
	return every
}

// parseGUCDuration parses a time setting as SHOW prints it ("60s",
// "1min", "500ms", "0"); 0 when it cannot.
func parseGUCDuration(s string) time.Duration {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return 0
	}
	unit := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[strings.TrimSpace(s[i:])]
	return time.Duration(n) * unit
}

// handle decodes one pgoutput message and sends its records.
func (r *reader) handle(ctx context.Context, data []byte, rels map[uint32]*relation, tx *txState, sendStatus func() error) error {
	out, err := r.decode(ctx, data, rels, tx)
	if err != nil {
		return err
	}
	for _, it := range out {
		if !r.send(ctx, it, sendStatus) {
			return ctx.Err()
		}
	}
	return nil
}

// send hands an item to Read, sending status updates while Read is slow
// (so the server does not time the connection out).
func (r *reader) send(ctx context.Context, it item, sendStatus func() error) bool {
	select {
	case r.ch <- it:
		r.pos = it.pos
		return true
	default:
	}
	t := time.NewTicker(r.statusEvery)
	defer t.Stop()
	for {
		select {
		case r.ch <- it:
			r.pos = it.pos
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			_ = sendStatus() // a broken connection shows at the next receive
		case <-r.confirm:
			_ = sendStatus()
		}
	}
}

// trimSegs forgets the snapshots' key ranges once the stream is past
// every one of them.
func (r *reader) trimSegs(p *position) {
	if p.Segs != nil && p.LSN >= p.maxSegLSN() {
		p.Segs = nil
	}
}

// decode turns one pgoutput message into items. The slice returned is
// the reader's, valid until the next decode.
func (r *reader) decode(ctx context.Context, data []byte, rels map[uint32]*relation, tx *txState) ([]item, error) {
	r.out = r.out[:0]
	if len(data) > 0 && (data[0] == 'I' || data[0] == 'U' || data[0] == 'D') {
		if err := r.decodeChange(ctx, data, rels, tx); err != nil {
			return nil, err
		}
		return r.out, nil
	}
	msg, err := parseMessage(data)
	if err != nil {
		return nil, &fatalError{fmt.Errorf("postgres_cdc: decoding a pgoutput message: %w", err)}
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		rels[m.RelationID] = r.relationOf(m)
		return nil, nil
	case *pglogrepl.BeginMessage:
		*tx = txState{active: true, finalLSN: m.FinalLSN, xid: m.Xid, commitMs: m.CommitTime.UnixMilli()}
		if r.pos.TxLSN != 0 && r.pos.TxLSN == m.FinalLSN {
			tx.skip = r.pos.TxSkip
		}
		tx.filterLSN = r.pos.Segs != nil && m.FinalLSN < r.pos.maxSegLSN()
		return nil, nil
	case *pglogrepl.CommitMessage:
		if !tx.active {
			return nil, &fatalError{errors.New("postgres_cdc: a commit without a transaction in the stream")}
		}
		*tx = txState{}
		p := r.clonePos()
		p.LSN, p.TxLSN, p.TxSkip = m.TransactionEndLSN, 0, 0
		r.trimSegs(p)
		return append(r.out, item{posOnly: true, pos: p}), nil
	case *pglogrepl.TruncateMessage:
		var names []string
		for _, id := range m.RelationIDs {
			if rel := rels[id]; rel != nil && rel.idx >= 0 {
				names = append(names, rel.table.String())
			}
		}
		if len(names) > 0 {
			r.sp.cfg.Logger.Warn("postgres_cdc: TRUNCATE is not captured (no per-row deletes are emitted for it): downstream copies keep the rows", "tables", strings.Join(names, ", "))
		}
		return nil, nil
	}
	return nil, nil // Origin, Type, logical decoding messages
}

func (r *reader) rel(rels map[uint32]*relation, id uint32) (*relation, error) {
	rel := rels[id]
	if rel == nil {
		return nil, &fatalError{fmt.Errorf("postgres_cdc: a change of relation %d before its Relation message", id)}
	}
	return rel, nil
}

// relationOf maps a Relation message (sent before a table's first change
// in a session and after every change of its columns) to a relation.
func (r *reader) relationOf(m *pglogrepl.RelationMessage) *relation {
	rel := &relation{table: tableName{m.Namespace, m.RelationName}, idx: -1}
	rel.origin = "postgres_cdc/" + rel.table.String()
	for i, t := range r.sp.tables {
		if t == rel.table {
			rel.idx = i
		}
	}
	for i, c := range m.Columns {
		rel.cols = append(rel.cols, column{name: c.Name, oid: c.DataType})
		if c.Flags&1 != 0 {
			rel.keys = append(rel.keys, i)
		}
	}
	if rel.idx >= 0 && r.sp.meta != nil {
		// The primary key, in its order: the Relation message flags the
		// replica identity's columns (every column under REPLICA
		// IDENTITY FULL) in table order.
		meta := r.sp.meta[rel.idx].rel
		var keys []int
		for _, k := range meta.keys {
			for i, c := range rel.cols {
				if c.name == meta.cols[k].name {
					keys = append(keys, i)
				}
			}
		}
		if len(keys) == len(meta.keys) {
			rel.keys = keys
		}
	}
	return rel
}

// decodeChange decodes an Insert, Update or Delete message (pgoutput
// protocol 1: the relation id, then the tuples, each after its kind byte
// 'K' key, 'O' old or 'N' new) and appends its records to r.out. It reads
// the tuples itself, into the reader's reused buffers, with values that
// point into data (valid until the next message; emit copies what it
// keeps), where pglogrepl allocates every column.
func (r *reader) decodeChange(ctx context.Context, data []byte, rels map[uint32]*relation, tx *txState) error {
	kind := data[0]
	bad := func(what string) error {
		return &fatalError{fmt.Errorf("postgres_cdc: decoding a pgoutput message: malformed %q message (%d bytes): %s", kind, len(data), what)}
	}
	if len(data) < 6 {
		return bad("truncated")
	}
	var old, after []value
	var oldKind byte // 'K' or 'O' when there is an old tuple
	var err error
	i := 5
	switch kind {
	case 'I':
		if data[i] != 'N' {
			return bad(fmt.Sprintf("tuple kind %q, want N", data[i]))
		}
		after, _, err = decodeTuple(data, i+1, r.newVals[:0], nil)
	case 'U':
		if data[i] == 'K' || data[i] == 'O' {
			oldKind = data[i]
			if old, i, err = decodeTuple(data, i+1, r.oldVals[:0], nil); err != nil {
				return bad(err.Error())
			}
			if i >= len(data) || data[i] != 'N' {
				return bad("no new tuple after the old one")
			}
		} else if data[i] != 'N' {
			return bad(fmt.Sprintf("tuple kind %q, want K, O or N", data[i]))
		}
		after, _, err = decodeTuple(data, i+1, r.newVals[:0], old)
	case 'D':
		if data[i] != 'K' && data[i] != 'O' {
			return bad(fmt.Sprintf("tuple kind %q, want K or O", data[i]))
		}
		oldKind = data[i]
		old, _, err = decodeTuple(data, i+1, r.oldVals[:0], nil)
	}
	if err != nil {
		return bad(err.Error())
	}
	if old != nil {
		r.oldVals = old[:0]
	}
	if after != nil {
		r.newVals = after[:0]
	}
	rel, err := r.rel(rels, binary.BigEndian.Uint32(data[1:]))
	if err != nil || rel.idx < 0 {
		return err
	}
	switch kind {
	case 'I':
		return r.emit(ctx, tx, rel, opCreate, nil, false, after)
	case 'D':
		return r.emit(ctx, tx, rel, opDelete, old, oldKind == 'K', nil)
	}
	if err := r.fillUnchanged(ctx, rel, tx.xid, after); err != nil {
		return err
	}
	keyOnly := oldKind == 'K'
	if oldKind != 0 && !sameKey(rel, old, after) {
		// A key change is a delete of the old key and an insert of the
		// new one, so that consumers keyed by it stay right.
		if err := r.emit(ctx, tx, rel, opDelete, old, keyOnly, nil); err != nil {
			return err
		}
		return r.emit(ctx, tx, rel, opCreate, nil, false, after)
	}
	before := old
	if oldKind == 0 {
		before, keyOnly = after, true // the key at least
	}
	return r.emit(ctx, tx, rel, opUpdate, before, keyOnly, after)
}

// fillUnchanged reads from the table the columns of an update's new
// tuple that pgoutput left out (TOASTed values the update did not change)
// and that the old tuple did not carry (REPLICA IDENTITY other than
// FULL): left out of the record they would read as null wherever a
// record is taken as the whole row (a key change's create, a changelog's
// row, an upsert). The values are the row's current ones: the column did
// not change in this update, and a later change of it comes with its own
// record. A row no longer there (deleted or re-keyed since) keeps them
// left out.
//
// Logical decoding sends a transaction as soon as its commit record is in
// the WAL, a moment before the server makes it visible to other sessions;
// the query waits until the change's transaction (xid) is visible, so that
// it reads the row as this transaction left it, not as it was before
// (a key change's new key would not be found yet).
func (r *reader) fillUnchanged(ctx context.Context, rel *relation, xid uint32, after []value) error {
	var cols []int
	for i := range rel.cols {
		if i < len(after) && !after[i].present {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 || r.sp.meta == nil {
		return nil
	}
	meta := r.sp.meta[rel.idx]
	if len(meta.keyTypes) != len(rel.keys) {
		return nil
	}
	var sel, keys, ph []string
	for _, i := range cols {
		sel = append(sel, quoteIdent(rel.cols[i].name))
	}
	var params [][]byte
	for j, k := range rel.keys {
		if k >= len(after) || !after[k].present || after[k].null {
			return nil // the key itself left out: nothing to find the row by
		}
		keys = append(keys, quoteIdent(rel.cols[k].name))
		params = append(params, after[k].text)
		ph = append(ph, fmt.Sprintf("$%d::%s", j+1, meta.keyTypes[j]))
	}
	if r.cmp == nil {
		c, err := connect(ctx, r.sp.cfg.DSN, false)
		if err != nil {
			return err
		}
		r.cmp = c
	}
	if err := r.awaitVisible(ctx, xid); err != nil {
		r.cmp.Close(context.Background())
		r.cmp = nil
		return fmt.Errorf("postgres_cdc: waiting for transaction %d to be visible before reading unchanged TOASTed columns of %s: %w", xid, rel.table, err)
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + meta.from() + " WHERE (" + strings.Join(keys, ", ") + ") = (" + strings.Join(ph, ", ") + ")"
	res := r.cmp.ExecParams(ctx, q, params, nil, nil, nil).Read()
	if res.Err != nil {
		var pe *pgconn.PgError
		if errors.As(res.Err, &pe) && strings.HasPrefix(pe.Code, "42") {
			// A column since dropped or renamed, or no SELECT on the
			// table (a pipeline without a snapshot needs none): left out.
			return nil
		}
		r.cmp.Close(context.Background())
		r.cmp = nil
		return fmt.Errorf("postgres_cdc: reading the unchanged TOASTed columns of %s: %w", rel.table, res.Err)
	}
	if len(res.Rows) != 1 {
		return nil
	}
	for j, i := range cols {
		if v := res.Rows[0][j]; v == nil {
			after[i] = value{present: true, null: true}
		} else {
			after[i] = value{present: true, text: append([]byte(nil), v...)}
		}
	}
	return nil
}

// visibleWait bounds awaitVisible's wait for a transaction to become
// visible: the gap between the commit record and the visibility is
// normally microseconds.
const visibleWait = 2 * time.Second

// awaitVisible waits, on r.cmp, until the transaction xid whose changes the
// stream delivered is visible to new snapshots (pg_current_snapshot, from
// PostgreSQL 13; before that it does not wait). After visibleWait it gives
// up and the query reads what it finds.
func (r *reader) awaitVisible(ctx context.Context, xid uint32) error {
	if r.hasSeen && r.seenXid == xid {
		return nil
	}
	deadline := time.Now().Add(visibleWait)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		res := r.cmp.ExecParams(ctx, "SELECT pg_current_snapshot()::text", nil, nil, nil, nil).Read()
		if res.Err != nil {
			var pe *pgconn.PgError
			if errors.As(res.Err, &pe) && strings.HasPrefix(pe.Code, "42") {
				return nil // no pg_current_snapshot (PostgreSQL 12 and older)
			}
			return res.Err
		}
		if len(res.Rows) == 1 && snapshotSees(string(res.Rows[0][0]), xid) {
			r.seenXid, r.hasSeen = xid, true
			return nil
		}
		if time.Now().After(deadline) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// snapshotSees reports whether a snapshot in pg_snapshot's text form
// ("xmin:xmax:xip,...", 64-bit transaction ids) sees the transaction
// whose 32-bit id is xid as finished: below xmax and not in progress. The
// 64-bit id is the one with xmax's epoch, or the epoch before if that is
// not below xmax.
func snapshotSees(snap string, xid uint32) bool {
	parts := strings.SplitN(snap, ":", 3)
	if len(parts) != 3 {
		return false
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return false
	}
	full := xmax&^0xffffffff | uint64(xid)
	if full >= xmax {
		if full < 1<<32 {
			return false
		}
		full -= 1 << 32
	}
	for _, f := range strings.Split(parts[2], ",") {
		if v, err := strconv.ParseUint(f, 10, 64); err == nil && v == full {
			return false
		}
	}
	return true
}

// decodeTuple reads the TupleData at data[i:] (a column count, then per
// column 'n' null, 'u' an unchanged TOASTed value pgoutput left out, or
// 't'/'b' a length and the value) into buf, and returns the tuple and the
// index after it. Left-out columns are taken from old when it has a value
// for them.
// The tuple is never nil.
func decodeTuple(data []byte, i int, buf, old []value) ([]value, int, error) {
	if i+2 > len(data) {
		return nil, 0, errors.New("truncated tuple")
	}
	n := int(binary.BigEndian.Uint16(data[i:]))
	i += 2
	out := buf[:0]
	if out == nil {
		out = make([]value, 0, n)
	}
	for c := range n {
		if i >= len(data) {
			return nil, 0, errors.New("truncated tuple")
		}
		k := data[i]
		i++
		switch k {
		case pglogrepl.TupleDataTypeNull:
			out = append(out, value{present: true, null: true})
		case pglogrepl.TupleDataTypeToast:
			// A TOASTed value is never null: a null in old is a column a
			// key-only old image (REPLICA IDENTITY DEFAULT) does not
			// carry, so the value stays left out.
			var v value
			if c < len(old) && old[c].present && !old[c].null {
				v = old[c]
			}
			out = append(out, v)
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if i+4 > len(data) {
				return nil, 0, errors.New("truncated column")
			}
			l := int(binary.BigEndian.Uint32(data[i:]))
			i += 4
			if l < 0 || l > len(data)-i {
				return nil, 0, errors.New("column longer than the message")
			}
			out = append(out, value{present: true, text: data[i : i+l : i+l]})
			i += l
		default:
			return nil, 0, fmt.Errorf("column %d of kind %q", c, k)
		}
	}
	return out, i, nil
}

// emit appends the record of one change to r.out, unless it was emitted
// before the restart (tx.skip) or a newer snapshot already holds it.
func (r *reader) emit(ctx context.Context, tx *txState, rel *relation, op byte, before []value, keyOnly bool, after []value) error {
	if !tx.active {
		return &fatalError{errors.New("postgres_cdc: a change outside a transaction in the stream")}
	}
	if tx.filterLSN {
		// Changes older than a resumed snapshot: keep them only for the
		// keys read in an older snapshot.
		keyFrom := after
		if keyFrom == nil {
			keyFrom = before
		}
		keep, err := r.keyNeedsChange(ctx, rel, keyText(rel, keyFrom), tx.finalLSN)
		if err != nil {
			return err
		}
		if !keep {
			return nil
		}
	}
	tx.emitted++
	p := r.clonePos()
	p.TxLSN, p.TxSkip = tx.finalLSN, tx.emitted
	if tx.emitted <= tx.skip {
		r.out = append(r.out, item{posOnly: true, pos: p})
		return nil
	}
	key, val := r.sp.enc.record(op, rel, before, keyOnly, after, source{db: r.sp.db, lsn: tx.finalLSN, txid: tx.xid, tsMs: tx.commitMs}, time.Now().UnixMilli())
	r.sp.src.stats.Records.Add(1)
	r.sp.src.stats.Bytes.Add(int64(len(val)))
	r.out = append(r.out, item{msg: connector.Message{Key: key, Value: val, Timestamp: tx.commitMs, Origin: rel.origin, Offset: -1}, pos: p})
	return nil
}

// keyNeedsChange reports whether a change committed at lsn of the row
// with key k is after the snapshot that read k's key range.
func (r *reader) keyNeedsChange(ctx context.Context, rel *relation, k []*string, lsn pglogrepl.LSN) (bool, error) {
	segs := r.pos.Segs[rel.idx]
	// The segment holding k: the last whose From is below k.
	at := 0
	for i := len(segs) - 1; i > 0; i-- {
		above, err := r.keyAbove(ctx, rel, k, segs[i].From)
		if err != nil {
			return false, err
		}
		if above {
			at = i
			break
		}
	}
	return lsn >= segs[at].LSN, nil
}

// keyAbove compares keys as PostgreSQL orders them (collations included).
func (r *reader) keyAbove(ctx context.Context, rel *relation, k, from []*string) (bool, error) {
	meta := r.sp.meta[rel.idx]
	if len(k) != len(from) || len(k) != len(meta.keyTypes) {
		return false, &fatalError{fmt.Errorf("postgres_cdc: %s: the primary key changed while a resumed snapshot's changes were read; start afresh", rel.table)}
	}
	if r.cmp == nil {
		c, err := connect(ctx, r.sp.cfg.DSN, false)
		if err != nil {
			return false, err
		}
		r.cmp = c
	}
	var a, b []string
	var params [][]byte
	for i := range k {
		if k[i] == nil || from[i] == nil {
			return false, &fatalError{fmt.Errorf("postgres_cdc: %s: a null key column", rel.table)}
		}
		params = append(params, []byte(*k[i]))
		a = append(a, fmt.Sprintf("$%d::%s", len(params), meta.keyTypes[i]))
	}
	for i := range from {
		params = append(params, []byte(*from[i]))
		b = append(b, fmt.Sprintf("$%d::%s", len(params), meta.keyTypes[i]))
	}
	res := r.cmp.ExecParams(ctx, "SELECT ROW("+strings.Join(a, ", ")+") > ROW("+strings.Join(b, ", ")+")", params, nil, nil, nil).Read()
	if res.Err != nil {
		r.cmp.Close(context.Background())
		r.cmp = nil
		return false, fmt.Errorf("postgres_cdc: comparing keys of %s: %w", rel.table, res.Err)
	}
	return len(res.Rows) == 1 && string(res.Rows[0][0]) == "t", nil
}

// parseMessage is pglogrepl.Parse, with the panics it has on truncated
// or malformed messages (an index out of range) turned into errors.
func parseMessage(data []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("malformed message (%d bytes, type %q): %v", len(data), data[:min(1, len(data))], p)
		}
	}()
	if err := checkBounds(data); err != nil {
		return nil, err
	}
	return pglogrepl.Parse(data)
}

// checkBounds checks the lengths pglogrepl allocates by before it reads
// (a truncate's relation count), so that a corrupt message cannot make it
// allocate gigabytes. Changes (Insert, Update, Delete), whose tuples
// carry column lengths, are decoded by decodeChange, not by pglogrepl.
func checkBounds(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty message")
	}
	if data[0] == 'T' && (len(data) < 10 || int(binary.BigEndian.Uint32(data[1:])) > (len(data)-6)/4) {
		return fmt.Errorf("malformed %q message: relation count beyond the message", data[0])
	}
	return nil
}
