package coord

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// ImportKind is the kind of state an ImportItem is.
type ImportKind string

// Kinds of imported state.
const (
	ImportClaim      ImportKind = "claim"
	ImportHandoff    ImportKind = "handoff"
	ImportBroadcast  ImportKind = "broadcast"
	ImportCheckpoint ImportKind = "checkpoint"
)

// ImportItem is one file of the seed's .cog/ tree.
type ImportItem struct {
	Kind ImportKind
	// File is the file's path relative to the workspace root, with '/'.
	File string
	// What names the item: the claimed path, "from -> to: artifact",
	// "channel: agent", "checkpoint: agent" (as far as the file could be read).
	What string
	// ID is the handoff's ID (deterministic, so a re-import finds it).
	ID string
	// Err says why the item failed (nil for imported and skipped items).
	Err error
}

func (it ImportItem) String() string {
	s := fmt.Sprintf("%s %s (%s)", it.Kind, it.What, it.File)
	if it.Err != nil {
		s += ": " + it.Err.Error()
	}
	return s
}

// ImportReport says what Import did with each file it looked at.
type ImportReport struct {
	// Imported items are now in NATS because of this run.
	Imported []ImportItem
	// Skipped items were already there (an earlier import, or the same
	// state made another way): nothing was written.
	Skipped []ImportItem
	// Failed items could not be imported: the file is malformed or invalid,
	// or (claims) the path is held by another agent. Err says which.
	Failed []ImportItem
}

// Count returns the number of imported, skipped and failed items of kind.
func (r ImportReport) Count(kind ImportKind) (imported, skipped, failed int) {
	count := func(items []ImportItem) int {
		n := 0
		for _, it := range items {
			if it.Kind == kind {
				n++
			}
		}
		return n
	}
	return count(r.Imported), count(r.Skipped), count(r.Failed)
}

// String summarizes the report, one line per kind.
func (r ImportReport) String() string {
	var b strings.Builder
	for _, k := range []ImportKind{ImportClaim, ImportHandoff, ImportBroadcast, ImportCheckpoint} {
		i, s, f := r.Count(k)
		fmt.Fprintf(&b, "%-11s imported %d, already present %d, failed %d\n", k+"s", i, s, f)
	}
	return b.String()
}

// DefaultImportClaimTTL is the lease given to imported claims unless
// WithImportClaimTTL says otherwise.
const DefaultImportClaimTTL = 15 * time.Minute

// ImportOption adjusts an Import.
type ImportOption func(*importOptions) error

type importOptions struct {
	claimTTL time.Duration
}

// WithImportClaimTTL sets the lease of imported claims (whole seconds, 1s
// to 24h): how long an agent named in an old claim file has to claim the
// path again (which adopts the imported claim) before it expires.
func WithImportClaimTTL(d time.Duration) ImportOption {
	return func(o *importOptions) error {
		if err := checkTTL(d); err != nil {
			return err
		}
		o.claimTTL = roundUpSecond(d)
		return nil
	}
}

// importIDSpace is the UUID namespace of deterministic handoff IDs.
var importIDSpace = uuid.MustParse("7b0f3c1e-5d2a-4c7e-9a61-2f4e8d3b6c15")

// Import reads the seed's file-based state under workspaceRoot/.cog and
// loads it into c's namespace, on behalf of the agents the files name:
//
//   - .cog/claims/*.claim (JSON Claim): each becomes a claim held by the
//     file's agent, keeping its reason and claimed_at, with the lease
//     WithImportClaimTTL (default 15 minutes). Nobody renews it: the agent
//     adopts it by claiming the path again (the holder's re-claim renews)
//     and keeps it from then on; an agent that never comes back loses it
//     when the lease runs out. A path held by the file's agent already is
//     skipped; one held by another agent fails with ErrClaimed.
//   - .cog/handoffs/*.json (JSON Handoff; files in subdirectories, such as
//     the seed's archive, are not pending and are ignored): each becomes a
//     pending handoff from the file's sender, keeping its timestamp, with
//     an ID derived from its content (a name-based UUID), so a re-import
//     finds it whether it is still pending or decided meanwhile.
//   - .cog/broadcasts/<channel>/*.msg (JSON Broadcast): each is published
//     on the directory's channel, in timestamp order, keeping its agent and
//     timestamp. One already in the channel with the same agent, timestamp
//     and message is skipped. Two messages of the same second are two
//     messages (the seed could lose one of them).
//   - .cog/signals/checkpoint/<name>/<agent>: each records agent's arrival
//     at checkpoint name, at the time the file holds (RFC 3339) or else its
//     modification time. An arrival already recorded is skipped.
//
// Running Import again changes nothing: every item is then skipped (or
// fails again). Bad files are reported in ImportReport.Failed and the
// import goes on. Import stops early only when ctx ends or no server
// answers (ErrUnavailable), returning what it did so far with the error.
// A missing .cog directory is an error wrapping fs.ErrNotExist.
//
// With a nil c, Import uses DefaultClient(workspaceRoot). Otherwise the
// state lands in c.Namespace(), which should be Namespace(workspaceRoot)
// for the package-level functions to see it.
func Import(ctx context.Context, c *Client, workspaceRoot string, opts ...ImportOption) (ImportReport, error) {
	var r ImportReport
	o := importOptions{claimTTL: DefaultImportClaimTTL}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return r, err
		}
	}
	ws, err := openWorkspace(workspaceRoot)
	if err != nil {
		return r, err
	}
	if c == nil {
		if c, err = DefaultClient(workspaceRoot); err != nil {
			return r, err
		}
	}
	if c.isClosed() {
		return r, ErrClosed
	}
	dir := filepath.Join(ws.real, ".cog")
	if fi, err := os.Stat(dir); err != nil {
		return r, fmt.Errorf("coord: import: %w", err)
	} else if !fi.IsDir() {
		return r, fmt.Errorf("coord: import: %s is not a directory", dir)
	}
	im := &importer{c: c, ws: ws, opts: o, report: &r}
	for _, step := range []func(context.Context) error{im.claims, im.handoffs, im.broadcasts, im.checkpoints} {
		if err := step(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

type importer struct {
	c      *Client
	ws     workspace
	opts   importOptions
	report *ImportReport
}

// outcome records an item; it returns a non-nil error only when the import
// must stop (ctx ended, server unavailable).
func (im *importer) outcome(ctx context.Context, it ImportItem, skipped bool, err error) error {
	switch {
	case err == nil && skipped:
		im.report.Skipped = append(im.report.Skipped, it)
	case err == nil:
		im.report.Imported = append(im.report.Imported, it)
	case ctx.Err() != nil:
		return fmt.Errorf("coord: import stopped at %s: %w", it.File, ctx.Err())
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return fmt.Errorf("coord: import stopped at %s: %w", it.File, err)
	default:
		it.Err = err
		im.report.Failed = append(im.report.Failed, it)
	}
	return nil
}

func (im *importer) rel(file string) string {
	if rel, ok := within(im.ws.real, file); ok {
		return rel
	}
	return file
}

// files lists the regular files in dir whose names end in ext ("" for
// all), sorted; a missing dir has none.
func files(dir, ext string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coord: import: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ext) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// dirs lists the subdirectories of dir, sorted; a missing dir has none.
func dirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coord: import: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// readJSON parses a seed JSON file into v; errors wrap ErrBadValue.
func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadValue, filepath.Base(file), err)
	}
	return nil
}

// ---- claims ----

func (im *importer) claims(ctx context.Context) error {
	return im.eachFile(ctx, filepath.Join(im.ws.real, ".cog", "claims"), ".claim", func(f string) (ImportItem, bool, error) {
		it := ImportItem{Kind: ImportClaim, File: im.rel(f)}
		skipped, err := im.claim(ctx, f, &it)
		return it, skipped, err
	})
}

// eachFile imports the files of dir whose names end in ext, one at a time:
// do returns the file's report item and whether it was there already, and
// every outcome is reported (which may end the import).
func (im *importer) eachFile(ctx context.Context, dir, ext string, do func(file string) (ImportItem, bool, error)) error {
	list, err := files(dir, ext)
	if err != nil {
		return err
	}
	for _, f := range list {
		it, skipped, err := do(f)
		if err := im.outcome(ctx, it, skipped, err); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) claim(ctx context.Context, file string, it *ImportItem) (skipped bool, err error) {
	var sc struct {
		Path      string    `json:"path"`
		Agent     string    `json:"agent"`
		Reason    string    `json:"reason"`
		ClaimedAt time.Time `json:"claimed_at"`
	}
	if err := readJSON(file, &sc); err != nil {
		return false, err
	}
	it.What = sc.Path
	if sc.Agent == "" {
		return false, fmt.Errorf("%w: claim of %q names no agent", ErrBadValue, sc.Path)
	}
	if err := subjects.ValidateAgent(sc.Agent); err != nil {
		return false, err
	}
	rel, err := im.ws.relPath(sc.Path)
	if err != nil {
		return false, err
	}
	it.What = rel
	if len(sc.Reason) > maxReasonBytes {
		return false, fmt.Errorf("%w: reason longer than %d bytes", ErrBadValue, maxReasonBytes)
	}
	key, _, err := im.c.claimKey(rel)
	if err != nil {
		return false, err
	}
	if sc.ClaimedAt.IsZero() {
		sc.ClaimedAt = time.Now().UTC()
	}
	rec := claimRecord{
		Path:       rel,
		Agent:      sc.Agent,
		Reason:     sc.Reason,
		ClaimedAt:  sc.ClaimedAt.UTC(),
		TTLSeconds: int64(im.opts.claimTTL / time.Second),
		Client:     "import",
		Lease:      uuid.NewString(),
	}
	cctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	_, err = im.c.claims.Create(cctx, key, rec.encode(), im.opts.claimTTL)
	var exists *kvstore.ExistsError
	if errors.As(err, &exists) {
		cur, derr := decodeClaim(key, exists.Entry.Value)
		if derr != nil {
			return false, derr
		}
		if cur.Agent == sc.Agent {
			return true, nil
		}
		return false, &ClaimedError{Path: rel, Owner: cur.Agent, Claim: im.c.claimFromRecord(cur, exists.Entry)}
	}
	if err != nil {
		return false, wrapNATS(err)
	}
	return false, nil
}

// ---- handoffs ----

func (im *importer) handoffs(ctx context.Context) error {
	return im.eachFile(ctx, filepath.Join(im.ws.real, ".cog", "handoffs"), ".json", func(f string) (ImportItem, bool, error) {
		it := ImportItem{Kind: ImportHandoff, File: im.rel(f)}
		skipped, err := im.handoff(ctx, f, &it)
		return it, skipped, err
	})
}

// seedHandoff is a handoff file of the seed.
type seedHandoff struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Artifact  string    `json:"artifact"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}

// readSeedHandoff parses and checks a seed handoff file.
func readSeedHandoff(file string) (seedHandoff, error) {
	var h seedHandoff
	if err := readJSON(file, &h); err != nil {
		return h, err
	}
	if err := subjects.ValidateAgent(h.From); err != nil {
		return h, fmt.Errorf("from: %w", err)
	}
	if err := subjects.ValidateAgent(h.To); err != nil {
		return h, fmt.Errorf("to: %w", err)
	}
	if err := checkText("artifact", h.Artifact, MaxArtifactBytes, true); err != nil {
		return h, err
	}
	if err := checkText("message", h.Message, MaxHandoffMessageSize, false); err != nil {
		return h, err
	}
	if h.Timestamp.IsZero() {
		return h, fmt.Errorf("%w: handoff has no timestamp", ErrBadValue)
	}
	h.Timestamp = h.Timestamp.UTC()
	return h, nil
}

// importedHandoffID is the ID Import gives a seed handoff in namespace ns: a
// name-based UUID of its content.
func importedHandoffID(ns string, h seedHandoff) string {
	return uuid.NewSHA1(importIDSpace, identity(ns, h.From, h.To, h.Artifact, h.Message, h.Timestamp.Format(time.RFC3339Nano))).String()
}

func (im *importer) handoff(ctx context.Context, file string, it *ImportItem) (skipped bool, err error) {
	h, err := readSeedHandoff(file)
	if h.From != "" || h.To != "" {
		it.What = fmt.Sprintf("%s -> %s: %s", h.From, h.To, h.Artifact)
	}
	if err != nil {
		return false, err
	}
	subj, err := subjects.HandoffSubject(im.c.opts.namespace, h.To)
	if err != nil {
		return false, err
	}
	id := importedHandoffID(im.c.opts.namespace, h)
	it.ID = id
	rec := handoffRecord{Handoff: Handoff{
		ID: id, From: h.From, To: h.To, Artifact: h.Artifact, Message: h.Message,
		Timestamp: h.Timestamp, Status: HandoffPending,
	}}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("coord: encoding handoff: %w", err)
	}
	cctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := im.c.handoffStream(cctx)
	if err != nil {
		return false, err
	}
	// A decided handoff lives on its done subject (its pending form is
	// deleted): if it is there, the handoff was imported and decided.
	_, done, err := im.c.handoffSubjects(h.To)
	if err != nil {
		return false, err
	}
	if _, _, ok, err := getHandoff(cctx, st, done+"."+id); err != nil || ok {
		return ok, err
	}
	// Create-only on the pending subject: a handoff still pending fails the
	// expectation and is skipped. (Were it decided between the check above
	// and this write, listings would hide the pending form re-created here,
	// as they hide any pending form that has a decided one.)
	ack, err := im.c.js.PublishMsg(cctx, &nats.Msg{Subject: subj + "." + id, Data: data},
		jetstream.WithMsgID(id), jetstream.WithExpectStream(subjects.HandoffStream),
		jetstream.WithExpectLastSequencePerSubject(0))
	if isWrongLastSequence(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("coord: storing handoff: %w", wrapJS(err))
	}
	return ack.Duplicate, nil
}

// identity joins fields unambiguously for hashing.
func identity(fields ...string) []byte {
	var b []byte
	for _, f := range fields {
		b = fmt.Appendf(b, "%d:%s;", len(f), f)
	}
	return b
}

// ---- broadcasts ----

type seedBroadcast struct {
	file      string
	item      ImportItem
	Agent     string    `json:"agent"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}

func (im *importer) broadcasts(ctx context.Context) error {
	root := filepath.Join(im.ws.real, ".cog", "broadcasts")
	channels, err := dirs(root)
	if err != nil {
		return err
	}
	for _, ch := range channels {
		if err := im.channel(ctx, root, ch); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) channel(ctx context.Context, root, channel string) error {
	list, err := files(filepath.Join(root, channel), ".msg")
	if err != nil || len(list) == 0 {
		return err
	}
	var msgs []*seedBroadcast
	for _, f := range list {
		m := &seedBroadcast{file: f, item: ImportItem{Kind: ImportBroadcast, File: im.rel(f), What: channel}}
		err := readJSON(f, m)
		if err == nil {
			m.item.What = channel + ": " + m.Agent
			err = m.check(channel)
		}
		if err != nil {
			if err := im.outcome(ctx, m.item, false, err); err != nil {
				return err
			}
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	// Oldest first, so the channel's order is the seed's.
	slices.SortStableFunc(msgs, func(a, b *seedBroadcast) int { return a.Timestamp.Compare(b.Timestamp) })
	subj, err := subjects.BroadcastSubject(im.c.opts.namespace, channel)
	var have []Broadcast
	if err == nil {
		have, err = im.c.Broadcasts(ctx, channel, 0)
	}
	if err != nil {
		// Nothing on this channel can be imported (or checked).
		for _, m := range msgs {
			if err := im.outcome(ctx, m.item, false, err); err != nil {
				return err
			}
		}
		return nil
	}
	present := make(map[string]bool, len(have))
	for _, b := range have {
		present[broadcastIdentity(b.Agent, b.Timestamp, b.Message)] = true
	}
	for _, m := range msgs {
		key := broadcastIdentity(m.Agent, m.Timestamp, m.Message)
		skipped := present[key]
		var err error
		if !skipped {
			skipped, err = im.publish(ctx, subj, channel, m, key)
			present[key] = err == nil
		}
		if err := im.outcome(ctx, m.item, skipped, err); err != nil {
			return err
		}
	}
	return nil
}

func (m *seedBroadcast) check(channel string) error {
	if err := subjects.ValidateAgent(m.Agent); err != nil {
		return err
	}
	if m.Timestamp.IsZero() {
		return fmt.Errorf("%w: broadcast has no timestamp", ErrBadValue)
	}
	if err := checkMessage(m.Message); err != nil {
		return fmt.Errorf("coord: broadcast on %q: %w", channel, err)
	}
	m.Timestamp = m.Timestamp.UTC()
	return nil
}

// broadcastIdentity is what makes two broadcasts the same message.
func broadcastIdentity(agent string, ts time.Time, message string) string {
	sum := sha256.Sum256(identity(agent, ts.UTC().Format(time.RFC3339Nano), message))
	return hex.EncodeToString(sum[:16])
}

// publish stores one imported broadcast with its original agent and
// timestamp. The message ID makes a concurrent second import within the
// stream's duplicate window a no-op too (reported as a duplicate).
func (im *importer) publish(ctx context.Context, subj, channel string, m *seedBroadcast, key string) (duplicate bool, err error) {
	body, err := json.Marshal(wireBroadcast{Channel: channel, Agent: m.Agent, Message: m.Message, Timestamp: m.Timestamp})
	if err != nil {
		return false, fmt.Errorf("coord: encoding broadcast: %w", err)
	}
	cctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	ack, err := im.c.js.Publish(cctx, subj, body,
		jetstream.WithMsgID("import-"+key), jetstream.WithExpectStream(subjects.BroadcastStream))
	if err != nil {
		return false, fmt.Errorf("coord: publishing to channel %q: %w", channel, streamError(err))
	}
	return ack.Duplicate, nil
}

// ---- checkpoints ----

func (im *importer) checkpoints(ctx context.Context) error {
	root := filepath.Join(im.ws.real, ".cog", "signals", "checkpoint")
	names, err := dirs(root)
	if err != nil {
		return err
	}
	for _, name := range names {
		err := im.eachFile(ctx, filepath.Join(root, name), "", func(f string) (ImportItem, bool, error) {
			agent := filepath.Base(f)
			skipped, err := im.arrival(ctx, name, agent, f)
			return ImportItem{Kind: ImportCheckpoint, File: im.rel(f), What: name + ": " + agent}, skipped, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) arrival(ctx context.Context, name, agent, file string) (skipped bool, err error) {
	key, err := subjects.CheckpointKey(im.c.opts.namespace, name, agent)
	if err != nil {
		return false, err
	}
	at := time.Time{}
	if s, err := readFirstLine(file); err == nil {
		at, _ = time.Parse(time.RFC3339Nano, s)
	}
	if at.IsZero() {
		fi, err := os.Stat(file)
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadValue, err)
		}
		at = fi.ModTime()
	}
	val, err := json.Marshal(arrival{Agent: agent, ArrivedAt: at.UTC()})
	if err != nil {
		return false, fmt.Errorf("coord: encoding arrival: %w", err)
	}
	cctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b, err := im.c.checkpointBucket(cctx)
	if err != nil {
		return false, err
	}
	_, err = b.Create(cctx, key, val, 0)
	if errors.Is(err, kvstore.ErrKeyExists) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("coord: arriving at checkpoint %q: %w", name, wrapNATS(err))
	}
	return false, nil
}
