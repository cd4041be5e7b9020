package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxBody is the request body limit used when none is given: far
// above coord's largest request (a 64 KiB handoff message plus fields).
const DefaultMaxBody = 256 << 10

// Errors of request decoding. Each error wraps one of them.
var (
	// ErrBodyTooLarge: the body is over the limit.
	ErrBodyTooLarge = errors.New("httpx: request body too large")
	// ErrInvalidJSON: not one JSON value of the expected shape (syntax
	// error, wrong type, unknown field, duplicate key, trailing data,
	// invalid UTF-8, empty when a body is required).
	ErrInvalidJSON = errors.New("httpx: invalid JSON body")
)

// Decode reads one JSON value from r (at most limit bytes; limit <= 0
// means DefaultMaxBody) into v, strictly: the body must be valid UTF-8,
// hold exactly one value with no duplicate object keys and no field v does
// not have, and nothing but whitespace after it. An empty body is
// ErrInvalidJSON.
func Decode(r io.Reader, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || int64(len(body)) > limit {
		return fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, limit)
	}
	if err != nil {
		return fmt.Errorf("%w: reading: %v", ErrInvalidJSON, err)
	}
	return DecodeBytes(body, v)
}

// DecodeBytes is Decode of a body already read.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", ErrInvalidJSON)
	}
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidJSON)
	}
	if err := checkDuplicates(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the JSON value", ErrInvalidJSON)
	}
	return nil
}

// checkDuplicates walks the body's tokens and refuses an object with the
// same key twice (encoding/json would keep the last silently, so a proxy
// or a log could read another request than the one served).
func checkDuplicates(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next token in this object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidJSON, err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if k, ok := tok.(string); ok {
				// encoding/json matches field names case-insensitively, so
				// "path" and "PATH" would set one field: fold before
				// comparing.
				k = foldKey(k)
				if top.keys[k] {
					return fmt.Errorf("%w: key %q appears twice", ErrInvalidJSON, k)
				}
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the parent object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

// foldKey maps every rune of k to the smallest rune of its simple case
// folding orbit: two keys fold alike exactly when strings.EqualFold (the
// rule encoding/json matches fields by) says they are equal.
func foldKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		lo := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lo = min(lo, f)
		}
		b.WriteRune(lo)
	}
	return b.String()
}

// DecodeRequest decodes r's body strictly into v (see Decode), bounding
// the read with http.MaxBytesReader so an oversized body also closes the
// connection rather than being drained.
func DecodeRequest(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.Body == nil {
		return fmt.Errorf("%w: empty body", ErrInvalidJSON)
	}
	return Decode(http.MaxBytesReader(w, r.Body, limit), limit, v)
}
