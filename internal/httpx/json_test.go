package httpx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type claimRequest struct {
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
	TTL    string `json:"ttl,omitempty"`
	Wait   bool   `json:"wait,omitempty"`
}

func TestDecodeHostileBodies(t *testing.T) {
	cases := []struct {
		name, body string
		want       error
	}{
		{"empty", "", ErrInvalidJSON},
		{"whitespace", " \n\t", ErrInvalidJSON},
		{"unknown field", `{"path":"a","owner":"root"}`, ErrInvalidJSON},
		{"unknown field, other case", `{"PATH":"a","Reasonx":"b"}`, ErrInvalidJSON},
		{"trailing value", `{"path":"a"}{"path":"b"}`, ErrInvalidJSON},
		{"trailing garbage", `{"path":"a"} x`, ErrInvalidJSON},
		{"duplicate key", `{"path":"a","path":"../etc"}`, ErrInvalidJSON},
		{"duplicate key in nested", `{"path":"a","reason":"r","ttl":"1s","wait":true,"x":{"k":1,"k":2}}`, ErrInvalidJSON},
		{"duplicate key, other case", `{"path":"a","PATH":"../etc"}`, ErrInvalidJSON},
		{"duplicate key, long s", `{"reason":"a","reaſon":"b"}`, ErrInvalidJSON},
		{"invalid UTF-8", "{\"path\":\"a\xff\"}", ErrInvalidJSON},
		{"wrong type", `{"path":1}`, ErrInvalidJSON},
		{"array", `[{"path":"a"}]`, ErrInvalidJSON},
		{"truncated", `{"path":"a"`, ErrInvalidJSON},
		{"comment", `{"path":"a"} // hi`, ErrInvalidJSON},
		{"huge", `{"path":"` + strings.Repeat("a", 2<<20) + `"}`, ErrBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v claimRequest
			err := Decode(strings.NewReader(tc.body), 1<<20, &v)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%.40q): %v, want %v", tc.body, err, tc.want)
			}
		})
	}
	var v claimRequest
	if err := Decode(strings.NewReader(" {\"path\":\"src/a.go\",\"wait\":true}\n"), 0, &v); err != nil || v.Path != "src/a.go" || !v.Wait {
		t.Fatalf("a good body: %+v, %v", v, err)
	}
	// Same keys in sibling objects are not duplicates.
	var m []map[string]int
	if err := Decode(strings.NewReader(`[{"k":1},{"k":2}]`), 0, &m); err != nil {
		t.Fatalf("sibling objects: %v", err)
	}
}

// FuzzDecode checks that whatever Decode accepts is one valid JSON value
// of valid UTF-8, under the limit, with no field the target lacks: decoding
// it again without the strict checks gives the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"path":"a"}`, `{"path":"a","x":1}`, `{"path":"a"}{}`, `{"path":"a","path":"b"}`,
		"{\"path\":\"\xff\"}", `{"path":"a\u0000"}`, `{"reason":{"a":1}}`, `null`, `{}`, `{"wait":true} `, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v claimRequest
		err := DecodeBytes(body, &v)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("DecodeBytes(%q): %v wraps no sentinel", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var loose map[string]any
		if json.Unmarshal(body, &loose) == nil {
			for k := range loose {
				switch k {
				case "path", "reason", "ttl", "wait":
				default:
					if !strings.EqualFold(k, "path") && !strings.EqualFold(k, "reason") && !strings.EqualFold(k, "ttl") && !strings.EqualFold(k, "wait") {
						t.Fatalf("accepted unknown field %q in %q", k, body)
					}
				}
			}
		}
		var again claimRequest
		if err := json.Unmarshal(body, &again); err != nil || again != v {
			t.Fatalf("strict %+v, loose %+v, %v", v, again, err)
		}
	})
}
