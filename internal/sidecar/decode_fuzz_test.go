package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeRequest feeds request bodies to the local API's decoder for
// every request type: it never panics, refuses with errInvalid, and never
// accepts a field the type does not have (an agent cannot smuggle "agent"
// or "from" past it).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"path":"a"}`, `{"path":"a","agent":"bob"}`, `{"to":"b","artifact":"x","from":"c"}`,
		`{"agents":["a"],"count":2}`, `{"message":"hi"}`, `{"path":"a"} {"path":"b"}`, "{\"path\":\"\xff\"}",
		`{"path":"a","PATH":"b"}`, `[]`, `null`, ``, `{"reason":{"x":1}}`} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &ClaimRequest{} },
		func() any { return &HandoffRequest{} },
		func() any { return &RejectRequest{} },
		func() any { return &WaitRequest{} },
		func() any { return &PublishRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range targets {
			v := mk()
			r := httptest.NewRequest("POST", "http://x/", bytes.NewReader(body))
			if err := decode(r, v); err != nil {
				if !errors.Is(err, errInvalid) {
					t.Fatalf("decode(%q) into %T: %v does not wrap errInvalid", body, v, err)
				}
				continue
			}
			var fields map[string]json.RawMessage
			if json.Unmarshal(body, &fields) != nil {
				continue
			}
			typ := reflect.TypeOf(v).Elem()
		keys:
			for k := range fields {
				for i := range typ.NumField() {
					name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
					if strings.EqualFold(name, k) {
						continue keys
					}
				}
				t.Fatalf("decode(%q) into %T accepted unknown field %q", body, v, k)
			}
		}
	})
}
