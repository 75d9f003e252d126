package main

import "testing"

// TestMarshalJSONTidiesFloats: the CLI's JSON results print floats
// without binary rounding noise (70.04399999999998 for
// 70.044); strings, integers and small or large floats keep
// their value.
func TestMarshalJSONTidiesFloats(t *testing.T) {
	wall, tenth := 70.0, 0.1 // 70.04399999999998 and 0.30000000000000004 at run time
	for range 4 {
		wall += 0.011
	}
	v := struct {
		Wall  float64 `json:"wall_seconds"`
		Sum   float64 `json:"sum"`
		Name  string  `json:"name"`
		Count int64   `json:"count"`
		Small float64 `json:"small"`
		Big   float64 `json:"big"`
		Whole float64 `json:"whole"`
	}{wall, tenth + 0.2, `a "0.30000000000000004" \ b`, 12345678901234567, 1.5e-9, 3e21, 2}
	for _, indent := range []bool{false, true} {
		b, err := marshalJSON(v, indent)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"wall_seconds":70.044,"sum":0.3,"name":"a \"0.30000000000000004\" \\ b","count":12345678901234567,"small":1.5e-9,"big":3e+21,"whole":2}`
		if indent {
			want = "{\n  \"wall_seconds\": 70.044,\n  \"sum\": 0.3,\n  \"name\": \"a \\\"0.30000000000000004\\\" \\\\ b\",\n  \"count\": 12345678901234567,\n  \"small\": 1.5e-9,\n  \"big\": 3e+21,\n  \"whole\": 2\n}"
		}
		if string(b) != want {
			t.Errorf("indent %v:\n got %s\nwant %s", indent, b, want)
		}
	}
}

// TestConsumeJSONRepeatedHeaders: Kafka headers are ordered and a key may
// repeat; --format json once printed only the object headers, which kept
// the last value of each key. header_list has them all, in order.
func TestConsumeJSONRepeatedHeaders(t *testing.T) {
	m := message{topic: "t", offset: 4, value: []byte("v"), headers: []messageHeader{{"a", []byte("1")}, {"b", []byte("2")}, {"a", []byte("3")}, {"bin", []byte("\xff")}}}
	got := string(appendMessageJSON(nil, m))
	want := `{"topic":"t","partition":0,"offset":4,"timestamp":0,"key":null,"value":"v",` +
		`"headers":{"a":"3","b":"2","bin":"\ufffd"},` +
		`"header_list":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"a","value":"3"},{"key":"bin","value":null,"value_base64":"/w=="}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
