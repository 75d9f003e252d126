package kafka

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/auth"
)

// The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 and
// RFC 7677, without channel binding) over the stored credentials of
// package auth.
//
// One deviation from the RFC, as Apache Kafka's ScramSaslServer has it:
// the nonce of the client-final message must end with the nonce the server
// sent rather than equal it. librdkafka (up to at least 2.0) sends its own
// nonce in front of the combined one, and Kafka accepts that; the proof
// still covers the message as sent.

// errSCRAM is the cause of every failed SCRAM exchange; the details go to
// the server's log, never to the client.
var errSCRAM = errors.New("SCRAM authentication failed")

// scramLookup finds a user's credential for a mechanism.
type scramLookup func(user string, m auth.Mechanism) (auth.Credential, bool)

// scramServer is one SCRAM exchange as the server sees it: Step takes the
// client-first message and answers the server-first one, then takes the
// client-final message and answers the server-final one.
type scramServer struct {
	mech   auth.Mechanism
	lookup scramLookup
	state  int // 0: want client-first; 1: want client-final; 2: done; 3: failed

	user            string
	cred            auth.Credential
	gs2Header       string // "n,," or "y,," (with an authzid "n,a=NAME,")
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
}

func newSCRAMServer(m auth.Mechanism, lookup scramLookup) *scramServer {
	return &scramServer{mech: m, lookup: lookup}
}

// Done reports whether the exchange completed successfully.
func (c *scramServer) Done() bool { return c.state == 2 }

// User is the authenticated user once Done.
func (c *scramServer) User() string { return c.user }

// Step feeds the next client message and returns the server's answer.
// Any error ends the exchange.
func (c *scramServer) Step(msg []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c.state {
	case 0:
		out, err = c.clientFirst(string(msg))
	case 1:
		out, err = c.clientFinal(string(msg))
	default:
		err = fmt.Errorf("%w: message after the end of the exchange", errSCRAM)
	}
	if err != nil {
		c.state = 3
		return nil, err
	}
	c.state++
	return out, nil
}

// clientFirst parses gs2-header client-first-bare and answers the
// server-first message r=NONCE,s=SALT,i=ITERATIONS.
func (c *scramServer) clientFirst(msg string) ([]byte, error) {
	cbind, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, fmt.Errorf("%w: client-first message without a GS2 header", errSCRAM)
	}
	switch cbind {
	case "n", "y": // no channel binding (y: the client could, but thinks we cannot)
	default:
		return nil, fmt.Errorf("%w: channel binding %q is not supported", errSCRAM, cbind)
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, fmt.Errorf("%w: client-first message without a GS2 header", errSCRAM)
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-first message wants n=USER,r=NONCE", errSCRAM)
	}
	user, err := decodeSASLName(attrs[0][2:])
	if err != nil {
		return nil, err
	}
	if authzid != "" {
		az, ok := strings.CutPrefix(authzid, "a=")
		if !ok {
			return nil, fmt.Errorf("%w: malformed authorization identity", errSCRAM)
		}
		if az, err = decodeSASLName(az); err != nil || az != user {
			return nil, fmt.Errorf("%w: authorization identity differs from the user", errSCRAM)
		}
	}
	cnonce := attrs[1][2:]
	if !validNonce(cnonce) {
		return nil, fmt.Errorf("%w: bad client nonce", errSCRAM)
	}
	for _, ext := range attrs[2:] {
		// Kafka's one extension: delegation tokens, which Sluice has not.
		if ext == "tokenauth=true" {
			return nil, fmt.Errorf("%w: delegation tokens are not supported", errSCRAM)
		}
	}
	cred, ok := c.lookup(user, c.mech)
	if !ok {
		return nil, fmt.Errorf("%w: %w: %s", errSCRAM, auth.ErrUnknownUser, user)
	}
	snonce := make([]byte, 24)
	if _, err := crand.Read(snonce); err != nil {
		return nil, fmt.Errorf("%w: server nonce: %w", errSCRAM, err)
	}
	c.user, c.cred = user, cred
	c.gs2Header = cbind + "," + authzid + ","
	c.clientFirstBare = bare
	c.nonce = cnonce + base64.RawURLEncoding.EncodeToString(snonce)
	c.serverFirst = "r=" + c.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return []byte(c.serverFirst), nil
}

// clientFinal checks c=BINDING,r=NONCE[,...],p=PROOF and answers the
// server-final message v=SIGNATURE.
func (c *scramServer) clientFinal(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: client-final message without a proof", errSCRAM)
	}
	withoutProof := msg[:i]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-final message wants c=BINDING,r=NONCE", errSCRAM)
	}
	if attrs[0][2:] != base64.StdEncoding.EncodeToString([]byte(c.gs2Header)) {
		return nil, fmt.Errorf("%w: channel binding differs from the GS2 header", errSCRAM)
	}
	if nonce := attrs[1][2:]; !strings.HasSuffix(nonce, c.nonce) || !validNonce(nonce) {
		return nil, fmt.Errorf("%w: nonce does not match", errSCRAM)
	}
	h := c.hash()
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil || len(proof) != h().Size() {
		return nil, fmt.Errorf("%w: malformed proof", errSCRAM)
	}
	authMessage := []byte(c.clientFirstBare + "," + c.serverFirst + "," + withoutProof)
	clientKey := hmacSum(h, c.cred.StoredKey, authMessage)
	for j := range clientKey {
		clientKey[j] ^= proof[j]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), c.cred.StoredKey) != 1 {
		return nil, fmt.Errorf("%w: wrong password for %s", errSCRAM, c.user)
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(h, c.cred.ServerKey, authMessage))), nil
}

func (c *scramServer) hash() func() hash.Hash {
	if c.mech == auth.ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// decodeSASLName undoes RFC 5802's escaping of ',' (=2C) and '=' (=3D).
func decodeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		if s == "" {
			return "", fmt.Errorf("%w: empty user name", errSCRAM)
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in user name", errSCRAM)
		}
		i += 2
	}
	return b.String(), nil
}

// validNonce: printable ASCII without ',', at least one character.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}
