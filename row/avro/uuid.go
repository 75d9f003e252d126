package avro

import "fmt"

// A uuid logical type on a fixed of 16 bytes holds the UUID's bytes in
// network order (RFC 4122); rows carry it as the canonical text,
// 8-4-4-4-12 hexadecimal digits.

const hexDigits = "0123456789abcdef"

// appendUUID appends the canonical text of the 16 bytes b.
func appendUUID(dst, b []byte) []byte {
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// parseUUID appends the 16 bytes of the UUID whose canonical text is s
// (hexadecimal digits of either case).
func parseUUID(dst []byte, s string) ([]byte, error) {
	if len(s) != 36 {
		return dst, fmt.Errorf("%.40q is not a UUID (8-4-4-4-12 hexadecimal digits) or 16 bytes", s)
	}
	start := len(dst)
	for i := 0; i < len(s); {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return dst[:start], fmt.Errorf("%q is not a UUID: a hyphen is missing at %d", s, i)
			}
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return dst[:start], fmt.Errorf("%q is not a UUID: %q is not hexadecimal", s, s[i:i+2])
		}
		dst = append(dst, hi<<4|lo)
		i += 2
	}
	return dst, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
