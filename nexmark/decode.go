package nexmark

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError describes a line that is not a valid event in the shape
// AppendJSON writes. Check for it with errors.As.
type SyntaxError struct {
	Line   int64 // 1-based line number; 0 for UnmarshalEvent
	Offset int   // byte offset in the line
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("nexmark json: line %d, byte %d: %s", e.Line, e.Offset, e.Msg)
	}
	return fmt.Sprintf("nexmark json: byte %d: %s", e.Offset, e.Msg)
}

// maxLineBytes bounds one input line (one event) for Decoder.
const maxLineBytes = 64 << 20

// maxSkipDepth bounds the nesting of unknown values the decoder skips.
const maxSkipDepth = 64

// UnmarshalEvent parses one event in the shape AppendJSON writes into e,
// overwriting every field. Keys may come in any order; unknown keys are
// skipped; missing record fields are zero. The record that event_type names
// must be an object and the other two null or absent. Invalid UTF-8 in
// strings becomes U+FFFD.
func UnmarshalEvent(data []byte, e *Event) error {
	p := parser{data: data}
	return p.event(e)
}

// Decoder reads events written one JSON object per line, as GenerateJSON
// writes them. Blank lines are skipped. Strings of decoded events are
// carved from an arena owned by the decoder and stay valid indefinitely.
type Decoder struct {
	sc   *bufio.Scanner
	line int64
	p    parser
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	return &Decoder{sc: sc, p: parser{arena: &stringArena{}}}
}

// Decode reads the next event into e. It returns io.EOF after the last
// event, a *SyntaxError for a malformed line, or the reader's error.
func (d *Decoder) Decode(e *Event) error {
	for d.sc.Scan() {
		d.line++
		line := d.sc.Bytes()
		if isBlank(line) {
			continue
		}
		d.p.data, d.p.pos = line, 0
		if err := d.p.event(e); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				se.Line = d.line
			}
			return err
		}
		return nil
	}
	if err := d.sc.Err(); err != nil {
		return fmt.Errorf("nexmark json: line %d: %w", d.line+1, err)
	}
	return io.EOF
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// parser is a small recursive-descent JSON parser specialised to the event
// shape: it decodes straight into the typed records.
type parser struct {
	data    []byte
	pos     int
	arena   *stringArena // nil: strings are allocated one by one
	scratch []byte       // decoded string bytes
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the next non-blank byte, or 0 at the end of input.
func (p *parser) peek() byte {
	p.ws()
	if p.pos >= len(p.data) {
		return 0
	}
	return p.data[p.pos]
}

func (p *parser) expect(c byte) error {
	if p.peek() != c {
		return p.unexpected(fmt.Sprintf("%q", c))
	}
	p.pos++
	return nil
}

func (p *parser) unexpected(want string) error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input, want %s", want)
	}
	return p.errorf("unexpected %q, want %s", p.data[p.pos], want)
}

// object calls field for every key of an object; field must consume the
// value.
func (p *parser) object(field func(key []byte) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.pos++
		return nil
	}
	for {
		key, err := p.rawString()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.unexpected(`"," or "}"`)
		}
	}
}

// null consumes a null literal if one comes next and reports whether it
// did.
func (p *parser) null() bool {
	if p.peek() == 'n' && len(p.data)-p.pos >= 4 && string(p.data[p.pos:p.pos+4]) == "null" {
		p.pos += 4
		return true
	}
	return false
}

func (p *parser) event(e *Event) error {
	*e = Event{}
	var sawType, sawPerson, sawAuction, sawBid bool
	typ := int64(-1)
	err := p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "event_type":
			typ, err = p.int()
			sawType = true
		case "person":
			if !p.null() {
				sawPerson = true
				err = p.person(&e.Person)
			}
		case "auction":
			if !p.null() {
				sawAuction = true
				err = p.auction(&e.Auction)
			}
		case "bid":
			if !p.null() {
				sawBid = true
				err = p.bid(&e.Bid)
			}
		default:
			err = p.skip(0)
		}
		return err
	})
	if err != nil {
		return err
	}
	if p.peek() != 0 {
		return p.unexpected("end of input")
	}
	if !sawType {
		return p.errorf("missing event_type")
	}
	if typ < int64(EventPerson) || typ > int64(EventBid) {
		return p.errorf("event_type %d is not 0, 1 or 2", typ)
	}
	e.Type = EventType(typ)
	want := [3]bool{e.Type == EventPerson, e.Type == EventAuction, e.Type == EventBid}
	got := [3]bool{sawPerson, sawAuction, sawBid}
	for i, name := range [3]string{"person", "auction", "bid"} {
		if want[i] && !got[i] {
			return p.errorf("event_type %d needs a %s object", typ, name)
		}
		if !want[i] && got[i] {
			return p.errorf("event_type %d carries a %s object", typ, name)
		}
	}
	return nil
}

func (p *parser) person(r *Person) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = p.int()
		case "name":
			r.Name, err = p.string()
		case "emailAddress":
			r.EmailAddress, err = p.string()
		case "creditCard":
			r.CreditCard, err = p.string()
		case "city":
			r.City, err = p.string()
		case "state":
			r.State, err = p.string()
		case "dateTime":
			r.DateTime, err = p.int()
		case "extra":
			r.Extra, err = p.string()
		default:
			err = p.skip(0)
		}
		return err
	})
}

func (p *parser) auction(r *Auction) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = p.int()
		case "itemName":
			r.ItemName, err = p.string()
		case "description":
			r.Description, err = p.string()
		case "initialBid":
			r.InitialBid, err = p.int()
		case "reserve":
			r.Reserve, err = p.int()
		case "dateTime":
			r.DateTime, err = p.int()
		case "expires":
			r.Expires, err = p.int()
		case "seller":
			r.Seller, err = p.int()
		case "category":
			r.Category, err = p.int()
		case "extra":
			r.Extra, err = p.string()
		default:
			err = p.skip(0)
		}
		return err
	})
}

func (p *parser) bid(r *Bid) error {
	return p.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "auction":
			r.Auction, err = p.int()
		case "bidder":
			r.Bidder, err = p.int()
		case "price":
			r.Price, err = p.int()
		case "channel":
			r.Channel, err = p.string()
		case "url":
			r.URL, err = p.string()
		case "dateTime":
			r.DateTime, err = p.int()
		case "extra":
			r.Extra, err = p.string()
		default:
			err = p.skip(0)
		}
		return err
	})
}

// int parses a JSON number that must be an integer within int64.
func (p *parser) int() (int64, error) {
	p.ws()
	start := p.pos
	neg := false
	if p.pos < len(p.data) && p.data[p.pos] == '-' {
		neg = true
		p.pos++
	}
	if p.pos >= len(p.data) || p.data[p.pos] < '0' || p.data[p.pos] > '9' {
		return 0, p.unexpected("an integer")
	}
	if p.data[p.pos] == '0' && p.pos+1 < len(p.data) && p.data[p.pos+1] >= '0' && p.data[p.pos+1] <= '9' {
		return 0, p.errorf("integer with a leading zero")
	}
	// Accumulate as a negative number so that MinInt64 fits.
	var v int64
	const minInt64 = -1 << 63
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		d := int64(p.data[p.pos] - '0')
		if v < (minInt64+d)/10 {
			p.pos = start
			return 0, p.errorf("integer out of range")
		}
		v = v*10 - d
		p.pos++
	}
	if p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '.', 'e', 'E':
			return 0, p.errorf("number is not an integer")
		}
	}
	if !neg {
		if v == minInt64 {
			p.pos = start
			return 0, p.errorf("integer out of range")
		}
		v = -v
	}
	return v, nil
}

// string parses a JSON string and returns a copy that outlives the input.
func (p *parser) string() (string, error) {
	b, err := p.rawString()
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", nil
	}
	if p.arena != nil {
		return p.arena.copyString(b), nil
	}
	return string(b), nil
}

// rawString parses a JSON string and returns its decoded bytes, valid until
// the next call: a sub-slice of the input when no decoding was needed,
// else the parser's scratch buffer.
func (p *parser) rawString() ([]byte, error) {
	if p.peek() != '"' {
		return nil, p.unexpected("a string")
	}
	p.pos++
	start := p.pos
	// Fast path: plain ASCII without escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			p.pos++
			return p.data[start : p.pos-1], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	out := append(p.scratch[:0], p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.scratch = out
			return out, nil
		case c < 0x20:
			return nil, p.errorf("control character %#x in string", c)
		case c == '\\':
			var err error
			if out, err = p.escape(out); err != nil {
				return nil, err
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.data[p.pos:p.pos+size]...)
			}
			p.pos += size
		default:
			out = append(out, c)
			p.pos++
		}
	}
}

// escape decodes the escape sequence at p.pos and appends it to out.
func (p *parser) escape(out []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.errorf("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(r) {
			r2 := utf8.RuneError
			if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
				save := p.pos
				p.pos += 2
				low, err := p.hex4()
				if err != nil {
					return nil, err
				}
				if d := utf16.DecodeRune(r, low); d != utf8.RuneError {
					r2 = d
				} else {
					p.pos = save // not a pair: decode the second escape on its own
				}
			}
			r = r2
		}
		return utf8.AppendRune(out, r), nil
	}
	p.pos--
	return nil, p.errorf("invalid escape \\%c", c)
}

func (p *parser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.errorf("short \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, p.errorf("invalid \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

// skip consumes any JSON value.
func (p *parser) skip(depth int) error {
	if depth > maxSkipDepth {
		return p.errorf("values nested deeper than %d", maxSkipDepth)
	}
	switch c := p.peek(); {
	case c == '"':
		_, err := p.rawString()
		return err
	case c == '{':
		return p.object(func([]byte) error { return p.skip(depth + 1) })
	case c == '[':
		p.pos++
		if p.peek() == ']' {
			p.pos++
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
				p.pos++
				return nil
			default:
				return p.unexpected(`"," or "]"`)
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
				p.pos += len(lit)
				return nil
			}
		}
		return p.unexpected("a value")
	default:
		return p.unexpected("a value")
	}
}

// number consumes a JSON number of any form (for skipped values).
func (p *parser) number() error {
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return p.unexpected("a digit")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.unexpected("a digit")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.unexpected("a digit")
		}
	}
	return nil
}

// LineParser decodes single lines, as AppendJSON writes them, into events.
// Strings of decoded events are carved from an arena owned by the parser
// and stay valid indefinitely. It is not safe for concurrent use.
type LineParser struct {
	p parser
}

// NewLineParser returns a parser with its own string arena.
func NewLineParser() *LineParser {
	return &LineParser{p: parser{arena: &stringArena{}}}
}

// Parse decodes line into e like UnmarshalEvent.
func (lp *LineParser) Parse(line []byte, e *Event) error {
	lp.p.data, lp.p.pos = line, 0
	err := lp.p.event(e)
	lp.p.data = nil
	return err
}
