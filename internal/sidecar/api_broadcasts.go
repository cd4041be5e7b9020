package sidecar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cogos-dev/coord/coord"
)

// PublishRequest is the body of POST /v1/broadcasts/{channel}.
type PublishRequest struct {
	Message string `json:"message"`
}

// publish: POST /v1/broadcasts/{channel}: stored (acknowledged) before
// the answer.
func (a *api) publish(r *http.Request, c *coord.Client, req PublishRequest) (any, error) {
	return c.Publish(r.Context(), r.PathValue("channel"), req.Message)
}

// broadcasts: GET /v1/broadcasts/{channel}[?since=1h][&follow=1]. Without
// follow: the retained messages of the window, oldest first, as a JSON
// array. With follow: those, then live messages as they come, one JSON
// object per line (NDJSON), or as server-sent events when the client
// accepts text/event-stream (or asks ?format=sse), until it hangs up.
func (a *api) broadcasts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := parseDuration("since", q.Get("since"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.client(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	channel := r.PathValue("channel")
	if !truthy(q.Get("follow")) {
		list, err := c.Broadcasts(r.Context(), channel, since)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if list == nil {
			list = []coord.Broadcast{}
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	// Subscribe first, then read the history: a message stored in between
	// is in both, and is sent once (by sequence).
	sub, err := c.Subscribe(r.Context(), channel)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer sub.Stop()
	var history []coord.Broadcast
	if q.Has("since") {
		if history, err = c.Broadcasts(r.Context(), channel, since); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	sse := q.Get("format") == "sse" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var last uint64
	send := func(b coord.Broadcast) bool {
		if b.Seq <= last {
			return true
		}
		last = b.Seq
		line, err := json.Marshal(b)
		if err != nil {
			return false
		}
		if sse {
			_, err = fmt.Fprintf(w, "id: %d\nevent: broadcast\ndata: %s\n\n", b.Seq, line)
		} else {
			_, err = fmt.Fprintf(w, "%s\n", line)
		}
		if err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, b := range history {
		if !send(b) {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	// A comment line every 15s keeps proxies and idle timeouts away.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case b, ok := <-sub.C():
			if !ok {
				if err := sub.Err(); err != nil && r.Context().Err() == nil {
					a.log.Warn().Err(err).Str("channel", channel).Msg("follow ended")
				}
				return
			}
			if !send(b) {
				return
			}
		case <-keep.C:
			if sse {
				fmt.Fprint(w, ": keepalive\n\n")
				if flusher != nil {
					flusher.Flush()
				}
			}
		case <-r.Context().Done():
			return
		}
	}
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
