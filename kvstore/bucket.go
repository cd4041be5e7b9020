package kvstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Op says what a revision of a key is.
type Op uint8

const (
	// OpPut is a live value.
	OpPut Op = iota
	// OpDelete is a delete marker (kvstore's Delete, or nats kv del).
	OpDelete
	// OpPurge is a purge marker (nats kv purge).
	OpPurge
	// OpExpire is the server's marker for a value whose TTL ran out.
	OpExpire
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpPurge:
		return "purge"
	case OpExpire:
		return "expire"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Entry is one revision of a key.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time
	Op       Op
	// TTL is the per-message TTL the revision was written with (0: none).
	TTL time.Duration
	// writeID identifies the write that stored the revision (see publish).
	writeID string
}

// Live reports whether the entry holds a value (not a marker).
func (e Entry) Live() bool { return e.Op == OpPut }

// Header names kvstore reads and writes (the same ones nats.go's KV uses).
const (
	hdrKVOp         = "KV-Operation"
	hdrMarkerReason = "Nats-Marker-Reason"
	hdrTTL          = "Nats-TTL"
	// hdrWriteID carries a unique ID on every kvstore write, so a write
	// sent again after an unanswered try can tell its own revision.
	hdrWriteID = "Coord-Write-Id"
	kvDel      = "DEL"
	kvPurge    = "PURGE"
)

// Bucket is a JetStream KV bucket with the operations coord needs and nats.go
// lacks: create and revision-checked update with a per-key TTL, revision-checked
// delete that leaves an expiring marker, and reads from the stream leader.
// It is safe for concurrent use.
type Bucket struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	kv      jetstream.KeyValue
	name    string
	stream  string
	prefix  string // "$KV.<bucket>."
	getSubj string // "$JS.API.STREAM.MSG.GET.KV_<bucket>"
	// MarkerTTL is how long delete markers written by Delete live.
	markerTTL time.Duration
	// direct: reads may use direct gets (a single-replica stream, whose
	// one server answers both writes and reads, so they are never stale).
	direct     bool
	directSubj string // "$JS.API.DIRECT.GET.KV_<bucket>"
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Stream is the name of the bucket's stream.
func (b *Bucket) Stream() string { return b.stream }

// KeyValue is the nats.go view of the bucket.
func (b *Bucket) KeyValue() jetstream.KeyValue { return b.kv }

func (b *Bucket) subject(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return b.prefix + key, nil
}

// validKey accepts what nats.go's KV accepts for a concrete key.
func validKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.':
			if key[i-1] == '.' {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

func (b *Bucket) publish(ctx context.Context, key string, value []byte, hdr nats.Header, expect uint64, check bool, ttl time.Duration) (uint64, error) {
	m, err := b.write(key, value, hdr, expect, check, ttl)
	if err != nil {
		return 0, err
	}
	return b.send(ctx, key, m, 0)
}

// send publishes a write, bounding each try (firstWriteAttempt, doubling up
// to maxReadAttempt) and sending it again until ctx ends when a try goes
// unanswered: a message sent just as its server goes down, or before a
// restarted one serves the stream, is dropped without a word. Sending a
// write twice is safe: an unconditional one is stored again (same value,
// later revision); a revision-checked one fails its check if the first copy
// was stored, and then the key's last revision carries this write's ID and
// is its answer. tries counts tries already made (by UpdateAsync).
func (b *Bucket) send(ctx context.Context, key string, m *nats.Msg, tries int) (uint64, error) {
	rev, err := retry(ctx, firstWriteAttempt, func(ctx context.Context) (uint64, error) {
		tries++
		return b.request(ctx, m)
	})
	if tries > 1 && errors.Is(err, ErrRevisionMismatch) {
		if e, lerr := b.Last(ctx, key); lerr == nil && e.writeID == m.Header.Get(hdrWriteID) {
			return e.Revision, nil // an earlier try was stored
		}
	}
	return rev, err
}

// request sends a write and reads its acknowledgement: what nats.go's
// PublishMsg does, without its option handling and, for the usual answer,
// without encoding/json (every claim and release is two of these).
func (b *Bucket) request(ctx context.Context, m *nats.Msg) (uint64, error) {
	ack, err := request(ctx, b.nc, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func request(ctx context.Context, nc *nats.Conn, m *nats.Msg) (*jetstream.PubAck, error) {
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, jetstream.ErrNoStreamResponse
		}
		return nil, err
	}
	return parseAck(resp.Data)
}

var (
	ackPrefix = []byte(`{"stream":"`)
	ackSeq    = []byte(`","seq":`)
)

// parseAck reads a JetStream publish acknowledgement. The server writes
// the usual success as {"stream":"<name>","seq":<n>}: that form is read
// by hand; anything else (an error, a duplicate, a domain) goes through
// encoding/json.
func parseAck(data []byte) (*jetstream.PubAck, error) {
	if rest, ok := bytes.CutPrefix(data, ackPrefix); ok {
		if i := bytes.Index(rest, ackSeq); i > 0 && bytes.IndexByte(rest[:i], '"') < 0 {
			digits := rest[i+len(ackSeq) : len(rest)-1]
			if rest[len(rest)-1] == '}' && len(digits) > 0 && len(digits) < 20 {
				n := uint64(0)
				for _, c := range digits {
					if c < '0' || c > '9' {
						n = 0
						break
					}
					n = n*10 + uint64(c-'0')
				}
				if n > 0 {
					return &jetstream.PubAck{Stream: string(rest[:i]), Sequence: n}, nil
				}
			}
		}
	}
	var ack struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		jetstream.PubAck
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("nats: %w", ack.Error)
	}
	if ack.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &ack.PubAck, nil
}

// write builds the message of a write to key: expecting the key's last
// revision to be expect when check is set, with a per-message TTL when
// ttl > 0 (the headers nats.go's publish options would set).
func (b *Bucket) write(key string, value []byte, hdr nats.Header, expect uint64, check bool, ttl time.Duration) (*nats.Msg, error) {
	subj, err := b.subject(key)
	if err != nil {
		return nil, err
	}
	if hdr == nil {
		hdr = make(nats.Header, 3)
	}
	if check {
		expectLastSeq(hdr, expect)
	}
	if ttl > 0 {
		setTTL(hdr, ttl)
	}
	hdr[hdrWriteID] = []string{nuid.Next()}
	return &nats.Msg{Subject: subj, Data: value, Header: hdr}, nil
}

// roundTTL rounds a TTL up to whole seconds, the server's resolution.
func roundTTL(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// Put writes value unconditionally, with a TTL when ttl > 0.
func (b *Bucket) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return b.publish(ctx, key, value, nil, 0, false, ttl)
}

// Create writes value only if the key has no live value, with a TTL when
// ttl > 0. If the key is live it returns an *ExistsError holding the value.
func (b *Bucket) Create(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return b.CreateAfter(ctx, key, value, ttl, 0)
}

// CreateAfter is Create with a hint: the revision of the key's latest marker
// (0 for none). When the hint is right it costs one round trip; when it is
// stale it falls back to reading the key from the stream leader.
func (b *Bucket) CreateAfter(ctx context.Context, key string, value []byte, ttl time.Duration, after uint64) (uint64, error) {
	expect := after
	for attempt := 0; ; attempt++ {
		rev, err := b.publish(ctx, key, value, nil, expect, true, ttl)
		if !errors.Is(err, ErrRevisionMismatch) || attempt == 8 {
			return rev, err
		}
		e, err := b.Last(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			expect = 0
		case err != nil:
			return 0, err
		case e.Live():
			return 0, &ExistsError{Entry: e}
		default:
			expect = e.Revision
		}
	}
}

// Update replaces the value at revision rev, setting a fresh TTL when
// ttl > 0 (nats.go's KeyValue.Update cannot: a key updated with it loses its
// TTL). It returns ErrRevisionMismatch if the key has moved on.
func (b *Bucket) Update(ctx context.Context, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	return b.publish(ctx, key, value, nil, rev, true, ttl)
}

// Delete writes a delete marker if the key is at revision rev (any revision
// when rev is 0). The marker itself expires after the bucket's marker TTL, so
// keys that come and go do not grow the stream. It returns the marker's
// revision, which a later CreateAfter can use.
func (b *Bucket) Delete(ctx context.Context, key string, rev uint64) (uint64, error) {
	return b.DeleteWithNote(ctx, key, rev, nil)
}

// DeleteWithNote is Delete with a body on the marker: watchers of the key
// receive it as the delete event's value (coord uses it to hand a waiter its
// grant in the same message that wakes it).
func (b *Bucket) DeleteWithNote(ctx context.Context, key string, rev uint64, note []byte) (uint64, error) {
	hdr := nats.Header{hdrKVOp: []string{kvDel}}
	return b.publish(ctx, key, note, hdr, rev, rev != 0, b.markerTTL)
}

// Last reads the key's latest revision from the stream leader, markers
// included. It returns ErrNotFound only when the stream holds nothing for the
// key. Reads go to the leader (not a direct get from a possibly lagging
// replica), so a value just acknowledged is seen.
func (b *Bucket) Last(ctx context.Context, key string) (Entry, error) {
	subj, err := b.subject(key)
	if err != nil {
		return Entry{}, err
	}
	if b.direct {
		return b.directGet(ctx, b.directSubj+"."+subj, nil)
	}
	return b.getMsg(ctx, msgGetRequest{LastFor: subj})
}

// Get reads the key's live value from the stream leader; a key that was
// deleted, purged or expired gives ErrNotFound.
func (b *Bucket) Get(ctx context.Context, key string) (Entry, error) {
	e, err := b.Last(ctx, key)
	if err != nil {
		return Entry{}, err
	}
	if !e.Live() {
		return e, fmt.Errorf("%w: %q (%s at revision %d)", ErrNotFound, key, e.Op, e.Revision)
	}
	return e, nil
}

// Next returns the first revision at or after sequence from whose key matches
// filter (wildcards allowed), markers included.
func (b *Bucket) Next(ctx context.Context, filter string, from uint64) (Entry, error) {
	if from == 0 {
		from = 1
	}
	req := msgGetRequest{Seq: from, NextFor: b.prefix + filter}
	if b.direct {
		body, err := json.Marshal(req)
		if err != nil {
			return Entry{}, err
		}
		return b.directGet(ctx, b.directSubj, body)
	}
	return b.getMsg(ctx, req)
}

// directGet reads one message with the direct get API: the reply is the
// stored message itself, with its sequence, subject and time in headers.
func (b *Bucket) directGet(ctx context.Context, subj string, body []byte) (Entry, error) {
	return retry(ctx, firstReadAttempt, func(ctx context.Context) (Entry, error) {
		reply, err := b.nc.RequestWithContext(ctx, subj, body)
		if err != nil {
			return Entry{}, err
		}
		return b.parseDirect(subj, reply)
	})
}

func (b *Bucket) parseDirect(subj string, reply *nats.Msg) (Entry, error) {
	hdr := reply.Header
	if len(reply.Data) == 0 && hdr.Get("Status") != "" {
		switch hdr.Get("Status") {
		case "404":
			return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, subj)
		case "408":
			return Entry{}, fmt.Errorf("%w: %w on %s", ErrUnavailable, errDirectTimeout, b.stream)
		default:
			return Entry{}, fmt.Errorf("kvstore: direct get on %s: status %s %s", b.stream, hdr.Get("Status"), hdr.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(hdr.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("kvstore: direct get on %s: bad sequence header: %w", b.stream, err)
	}
	e := Entry{
		Key:      strings.TrimPrefix(hdr.Get(jetstream.SubjectHeader), b.prefix),
		Value:    reply.Data,
		Revision: seq,
	}
	if ts := hdr.Get(jetstream.TimeStampHeaer); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			e.Created = t
		}
	}
	e.Op, e.TTL = classify(hdr)
	e.writeID = hdr.Get(hdrWriteID)
	return e, nil
}

type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type msgGetResponse struct {
	Type  string              `json:"type"`
	Error *jetstream.APIError `json:"error,omitempty"`
	Msg   *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

func (b *Bucket) getMsg(ctx context.Context, req msgGetRequest) (Entry, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Entry{}, err
	}
	return retry(ctx, firstReadAttempt, func(ctx context.Context) (Entry, error) {
		reply, err := b.nc.RequestWithContext(ctx, b.getSubj, body)
		if err != nil {
			return Entry{}, err
		}
		return b.parseMsgGet(reply)
	})
}

func (b *Bucket) parseMsgGet(reply *nats.Msg) (Entry, error) {
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return Entry{}, fmt.Errorf("kvstore: decoding message get response: %w", err)
	}
	if resp.Error != nil {
		return Entry{}, resp.Error // mapped by retry
	}
	if resp.Msg == nil {
		return Entry{}, fmt.Errorf("kvstore: empty message get response from %s", b.stream)
	}
	e := Entry{
		Key:      strings.TrimPrefix(resp.Msg.Subject, b.prefix),
		Value:    resp.Msg.Data,
		Revision: resp.Msg.Sequence,
		Created:  resp.Msg.Time,
	}
	if len(resp.Msg.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(resp.Msg.Header)
		if err != nil {
			return Entry{}, fmt.Errorf("kvstore: decoding headers of %q: %w", e.Key, err)
		}
		e.Op, e.TTL = classify(hdr)
		e.writeID = hdr.Get(hdrWriteID)
	}
	return e, nil
}

// classify reads a revision's operation and TTL from its headers.
func classify(hdr nats.Header) (Op, time.Duration) {
	var ttl time.Duration
	if v := hdr.Get(hdrTTL); v != "" {
		ttl = parseTTL(v)
	}
	switch hdr.Get(hdrKVOp) {
	case kvDel:
		return OpDelete, ttl
	case kvPurge:
		return OpPurge, ttl
	}
	switch hdr.Get(hdrMarkerReason) {
	case "":
	case "MaxAge":
		return OpExpire, ttl
	case "Remove":
		return OpDelete, ttl
	default:
		return OpPurge, ttl
	}
	return OpPut, ttl
}

// parseTTL reads a Nats-TTL header: a Go duration or a number of seconds.
func parseTTL(v string) time.Duration {
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second
	}
	return 0
}

// Pending is a write sent without waiting for its acknowledgement.
type Pending struct {
	b   *Bucket
	key string
	m   *nats.Msg
	f   jetstream.PubAckFuture
	err error
}

// Wait returns the write's revision once the server acknowledged it, or its
// mapped error. A write left unanswered for firstWriteAttempt is sent again
// as publish does (see send).
func (p *Pending) Wait(ctx context.Context) (uint64, error) {
	if p.err != nil {
		return 0, p.err
	}
	t := time.NewTimer(firstWriteAttempt)
	defer t.Stop()
	select {
	case ack := <-p.f.Ok():
		return ack.Sequence, nil
	case err := <-p.f.Err():
		if !transient(err) {
			return 0, mapError(err)
		}
	case <-t.C:
	case <-ctx.Done():
		return 0, mapError(ctx.Err())
	}
	return p.b.send(ctx, p.key, p.m, 1)
}

// UpdateAsync is Update without waiting: the write is on the wire, in order
// before anything sent after it on the same connection, when it returns.
// Its outcome comes from Wait. (Writes to another stream sent after it may
// still be stored first: streams store independently.)
func (b *Bucket) UpdateAsync(key string, value []byte, rev uint64, ttl time.Duration) *Pending {
	m, err := b.write(key, value, nil, rev, true, ttl)
	if err != nil {
		return &Pending{err: err}
	}
	f, err := b.js.PublishMsgAsync(m)
	if err != nil {
		return &Pending{err: mapError(err)}
	}
	return &Pending{b: b, key: key, m: m, f: f}
}
