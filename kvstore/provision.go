package kvstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketConfig is what coord asks of a KV bucket.
type BucketConfig struct {
	Name        string
	Description string
	// Replicas is the number of copies (1, or 3/5 on a cluster). 0 means 1.
	Replicas int
	// Storage is file (the default) or memory.
	Storage jetstream.StorageType
	// History is the number of revisions kept per key. 0 means 1.
	History uint8
	// MaxValueSize bounds one value (0: the server's max payload).
	MaxValueSize int32
	// MarkerTTL is how long markers (deletes, expiries) live. Required: it
	// turns on per-key TTLs. Minimum one second.
	MarkerTTL time.Duration
}

// Drift is one setting in which an existing bucket or stream differs from
// the configuration asked for.
type Drift struct {
	Setting   string
	Want, Got string
}

func (d Drift) String() string { return fmt.Sprintf("%s: want %s, have %s", d.Setting, d.Want, d.Got) }

// DriftError reports a bucket or stream whose settings differ from the wanted
// ones. kvstore never rewrites an existing bucket or stream: an operator
// decides (nats kv edit / nats stream edit).
type DriftError struct {
	Name   string
	Drifts []Drift
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Drifts))
	for i, d := range e.Drifts {
		parts[i] = d.String()
	}
	return fmt.Sprintf("kvstore: %s exists with other settings (%s)", e.Name, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrConfigDrift) true.
func (e *DriftError) Is(target error) bool { return target == ErrConfigDrift }

// EnsureBucket opens the bucket, creating it if it does not exist. If it
// exists with other settings, EnsureBucket returns the usable bucket and a
// *DriftError; callers decide whether the drift matters. A bucket without
// per-key TTLs cannot serve coord and is returned as an error with no bucket.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (*Bucket, error) {
	if cfg.Name == "" {
		return nil, errors.New("kvstore: bucket name is required")
	}
	if cfg.MarkerTTL < time.Second {
		return nil, fmt.Errorf("kvstore: bucket %s: marker TTL %v is under the one-second minimum", cfg.Name, cfg.MarkerTTL)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.History == 0 {
		cfg.History = 1
	}
	kv, err := js.KeyValue(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         cfg.Name,
			Description:    cfg.Description,
			History:        cfg.History,
			MaxValueSize:   cfg.MaxValueSize,
			Storage:        cfg.Storage,
			Replicas:       cfg.Replicas,
			LimitMarkerTTL: cfg.MarkerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Lost a creation race: bind to the winner's bucket and check it.
			kv, err = js.KeyValue(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kvstore: bucket %s: %w", cfg.Name, mapError(err))
	}
	b := Open(js, kv, cfg.MarkerTTL)
	st, err := js.Stream(ctx, b.stream)
	if err != nil {
		return nil, fmt.Errorf("kvstore: bucket %s: %w", cfg.Name, mapError(err))
	}
	got := st.CachedInfo().Config
	if !got.AllowMsgTTL || got.SubjectDeleteMarkerTTL == 0 {
		return nil, fmt.Errorf("%w: bucket %s has no per-key TTLs (limit marker TTL unset); recreate it with --marker-ttl", ErrConfigDrift, cfg.Name)
	}
	b.markerTTL = got.SubjectDeleteMarkerTTL
	b.direct = got.AllowDirect && got.Replicas == 1
	var drifts []Drift
	drifts = diff(drifts, "replicas", cfg.Replicas, got.Replicas)
	drifts = diff(drifts, "storage", cfg.Storage.String(), got.Storage.String())
	drifts = diff(drifts, "history", int64(cfg.History), got.MaxMsgsPerSubject)
	drifts = diff(drifts, "marker TTL", cfg.MarkerTTL, got.SubjectDeleteMarkerTTL)
	if cfg.MaxValueSize != 0 {
		drifts = diff(drifts, "max value size", cfg.MaxValueSize, got.MaxMsgSize)
	}
	if len(drifts) > 0 {
		return b, &DriftError{Name: "bucket " + cfg.Name, Drifts: drifts}
	}
	return b, nil
}

// Open wraps an existing nats.go bucket. markerTTL is the TTL given to the
// markers Delete writes (0: markers never expire).
func Open(js jetstream.JetStream, kv jetstream.KeyValue, markerTTL time.Duration) *Bucket {
	name := kv.Bucket()
	return &Bucket{
		js:         js,
		nc:         js.Conn(),
		kv:         kv,
		name:       name,
		stream:     "KV_" + name,
		prefix:     "$KV." + name + ".",
		getSubj:    "$JS.API.STREAM.MSG.GET.KV_" + name,
		directSubj: "$JS.API.DIRECT.GET.KV_" + name,
		markerTTL:  markerTTL,
	}
}

// EnsureStream creates the stream if it does not exist. If it exists with
// other settings (subjects, retention, age, replicas, storage, limits), it
// returns the stream and a *DriftError, and changes nothing.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kvstore: stream %s: %w", cfg.Name, mapError(err))
	}
	got := st.CachedInfo().Config
	var drifts []Drift
	if !slices.Equal(cfg.Subjects, got.Subjects) {
		drifts = append(drifts, Drift{"subjects", strings.Join(cfg.Subjects, ","), strings.Join(got.Subjects, ",")})
	}
	drifts = diff(drifts, "retention", cfg.Retention.String(), got.Retention.String())
	drifts = diff(drifts, "max age", cfg.MaxAge, got.MaxAge)
	drifts = diff(drifts, "replicas", cfg.Replicas, got.Replicas)
	drifts = diff(drifts, "storage", cfg.Storage.String(), got.Storage.String())
	if cfg.MaxMsgSize != 0 {
		drifts = diff(drifts, "max message size", cfg.MaxMsgSize, got.MaxMsgSize)
	}
	if cfg.MaxMsgsPerSubject != 0 {
		drifts = diff(drifts, "max messages per subject", cfg.MaxMsgsPerSubject, got.MaxMsgsPerSubject)
	}
	drifts = diff(drifts, "allow msg TTL", cfg.AllowMsgTTL, got.AllowMsgTTL)
	drifts = diff(drifts, "allow direct", cfg.AllowDirect, got.AllowDirect)
	drifts = diff(drifts, "discard", cfg.Discard.String(), got.Discard.String())
	if len(drifts) > 0 {
		return st, &DriftError{Name: "stream " + cfg.Name, Drifts: drifts}
	}
	return st, nil
}

func diff[T comparable](ds []Drift, setting string, want, got T) []Drift {
	if want == got {
		return ds
	}
	return append(ds, Drift{Setting: setting, Want: fmt.Sprint(want), Got: fmt.Sprint(got)})
}
