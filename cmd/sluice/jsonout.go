package main

import (
	"encoding/json"
	"strconv"
)

// floatDigits is how many significant digits the CLI's JSON keeps of a
// non-integer number: enough for any measurement it prints, few enough
// that binary rounding noise (70.04400000000001, 0.30000000000000004)
// does not show.
const floatDigits = 12

// marshalJSON is json.Marshal (json.MarshalIndent with two spaces when
// indent is set) of a result the CLI prints, with every non-integer
// number rounded to floatDigits significant digits.
func marshalJSON(v any, indent bool) ([]byte, error) {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	return tidyJSONFloats(b), nil
}

// tidyJSONFloats rewrites the non-integer numbers of the valid JSON b
// (those with a fraction or an exponent; strings and integers are left
// alone) rounded to floatDigits significant digits, in encoding/json's
// format.
func tidyJSONFloats(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(b))
			out = append(out, b[i:j]...)
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j, float := i, false
			for ; j < len(b) && isJSONNumberByte(b[j]); j++ {
				float = float || b[j] == '.' || b[j] == 'e' || b[j] == 'E'
			}
			out = append(out, roundJSONNumber(b[i:j], float)...)
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	return out
}

func isJSONNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// roundJSONNumber is num rounded to floatDigits significant digits when
// it is a float, in the form encoding/json writes a float64.
func roundJSONNumber(num []byte, float bool) []byte {
	if !float {
		return num
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return num
	}
	f, err = strconv.ParseFloat(strconv.FormatFloat(f, 'g', floatDigits, 64), 64)
	if err != nil {
		return num
	}
	r, err := json.Marshal(f)
	if err != nil {
		return num
	}
	return r
}
