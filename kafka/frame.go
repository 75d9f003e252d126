package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Framing: every Kafka request and response is an int32 big-endian size
// followed by that many bytes. A request starts with a header:
//
//	api_key int16, api_version int16, correlation_id int32,
//	client_id nullable string (int16 length; -1 = null),
//	tagged fields (uvarint count, then tag/size/bytes) when the request
//	version is flexible (KIP-482).
//
// A response starts with the correlation id, then a tagged-field byte when
// the response is flexible, except for ApiVersions, whose response header
// is never flexible so that a client can read it whatever version it sent.

// Frame decoding errors. Each closes the connection that sent the frame.
var (
	ErrFrameTooLarge = errors.New("request frame larger than max request bytes")
	ErrMalformed     = errors.New("malformed request")
	ErrUnknownAPI    = errors.New("unknown api key")
)

// readFrame reads one size-prefixed frame from r into buf (grown as needed)
// and returns the frame body. Frames of a negative size or over limit bytes are
// rejected before anything is allocated. A frame larger than buf gets a
// buffer of up to proven bytes at once (the size of a frame this peer has
// already sent in full), and beyond that one that grows as data arrives.
func readFrame(r io.Reader, limit int32, buf []byte, proven int) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 0 {
		return nil, fmt.Errorf("frame size %d: %w", n, ErrMalformed)
	}
	if n > limit {
		return nil, fmt.Errorf("frame of %d bytes, limit %d: %w", n, limit, ErrFrameTooLarge)
	}
	if cap(buf) >= int(n) {
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, frameReadErr(n, err)
		}
		return buf, nil
	}
	// Grow with the data actually received, so that a peer announcing a
	// large frame it never sends cannot make the server allocate more
	// than it has shown it sends. The buffer starts at what the peer has
	// proven (or the caller's buffer, if larger), at least doubles, and
	// ends at the frame's size rounded up to frameRound, so that the
	// next request of about the same size (a producer's batches vary
	// below its batch limit) is read into it without growing again.
	want := roundUp(int(n), frameRound)
	buf = buf[:0]
	if first := min(want, max(frameChunk, roundUp(proven, frameRound))); cap(buf) < first {
		buf = make([]byte, 0, first)
	}
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(want, max(2*cap(buf), frameChunk)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):min(int(n), cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, frameReadErr(n, err)
		}
	}
	return buf, nil
}

// frameRound is the unit a grown request buffer's capacity is rounded up
// to.
const frameRound = 64 << 10

func roundUp(n, unit int) int { return (n + unit - 1) / unit * unit }

// frameChunk is the first allocation for a frame larger than the caller's
// buffer; it doubles as data arrives.
const frameChunk = 256 << 10

func frameReadErr(n int32, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d-byte frame: %w", n, err)
}

// requestHeader is the decoded header of one request.
type requestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
}

// parseHeader decodes the fixed part of a request header (key, version,
// correlation id). It needs only 8 bytes and is used to answer requests whose
// body cannot be decoded.
func parseHeader(frame []byte) (requestHeader, error) {
	if len(frame) < 8 {
		return requestHeader{}, fmt.Errorf("%d-byte frame has no request header: %w", len(frame), ErrMalformed)
	}
	return requestHeader{
		Key:           int16(binary.BigEndian.Uint16(frame[0:])),
		Version:       int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}, nil
}

// parseRequest decodes a request frame: header, then body with kmsg. The
// returned request may alias frame. Unknown api keys return ErrUnknownAPI;
// the version is not checked against what the server supports (dispatch
// does that).
func parseRequest(frame []byte) (requestHeader, kmsg.Request, error) {
	h, err := parseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return h, nil, fmt.Errorf("api key %d: %w", h.Key, ErrUnknownAPI)
	}
	if h.Version < 0 {
		return h, nil, fmt.Errorf("api key %d version %d: %w", h.Key, h.Version, ErrMalformed)
	}
	req.SetVersion(h.Version)
	b := frame[8:]
	// client_id: nullable string with an int16 length.
	if len(b) < 2 {
		return h, nil, fmt.Errorf("client id: %w", ErrMalformed)
	}
	l := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if l > 0 {
		if int(l) > len(b) {
			return h, nil, fmt.Errorf("client id of %d bytes in %d: %w", l, len(b), ErrMalformed)
		}
		h.ClientID = string(b[:l])
		b = b[l:]
	} else if l < -1 {
		return h, nil, fmt.Errorf("client id length %d: %w", l, ErrMalformed)
	}
	if req.IsFlexible() {
		if b, err = skipTags(b); err != nil {
			return h, nil, fmt.Errorf("request header tags: %w", err)
		}
	}
	if err := req.ReadFrom(b); err != nil {
		return h, nil, fmt.Errorf("api key %d version %d body: %v: %w", h.Key, h.Version, err, ErrMalformed)
	}
	return h, req, nil
}

// skipTags skips a tagged-field section and returns what follows.
func skipTags(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		if _, b, err = uvarint(b); err != nil { // tag
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("tagged field of %d bytes in %d: %w", size, len(b), ErrMalformed)
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("bad uvarint: %w", ErrMalformed)
	}
	return v, b[n:], nil
}

// appendResponse appends a whole response frame (size, header, body) to dst.
func appendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiKeyApiVersions {
		dst = append(dst, 0) // empty header tags
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
