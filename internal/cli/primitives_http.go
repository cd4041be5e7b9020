package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

func (h *httpBackend) publish(ctx context.Context, channel, message string) (coord.Broadcast, error) {
	var b coord.Broadcast
	err := h.do(ctx, http.MethodPost, "/v1/broadcasts/"+url.PathEscape(channel), sidecar.PublishRequest{Message: message}, &b)
	return b, err
}

func (h *httpBackend) broadcasts(ctx context.Context, channel string, since time.Duration) ([]coord.Broadcast, error) {
	q := ""
	if since > 0 {
		q = "?since=" + url.QueryEscape(since.String())
	}
	var out []coord.Broadcast
	err := h.do(ctx, http.MethodGet, "/v1/broadcasts/"+url.PathEscape(channel)+q, nil, &out)
	return out, err
}

func (h *httpBackend) follow(ctx context.Context, channel string, since time.Duration, f func(coord.Broadcast) error) error {
	q := "?follow=1"
	if since > 0 {
		q += "&since=" + url.QueryEscape(since.String())
	}
	req, err := h.request(ctx, http.MethodGet, "/v1/broadcasts/"+url.PathEscape(channel)+q, nil)
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sidecar %s: %w", h.shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeResponse(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var b coord.Broadcast
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			return fmt.Errorf("sidecar: follow: %w", err)
		}
		if err := f(b); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("sidecar: follow: %w", err)
	}
	return fmt.Errorf("sidecar %s ended the stream (stopped?)", h.shown)
}

func (h *httpBackend) handoff(ctx context.Context, req sidecar.HandoffRequest) (coord.Handoff, error) {
	var out coord.Handoff
	err := h.do(ctx, http.MethodPost, "/v1/handoffs", req, &out)
	return out, err
}

func (h *httpBackend) handoffs(ctx context.Context, agent string) ([]coord.Handoff, error) {
	q := ""
	if agent != "" {
		q = "?agent=" + url.QueryEscape(agent)
	}
	var out []coord.Handoff
	err := h.do(ctx, http.MethodGet, "/v1/handoffs"+q, nil, &out)
	return out, err
}

func (h *httpBackend) accept(ctx context.Context, id string) (coord.Handoff, error) {
	var out coord.Handoff
	err := h.do(ctx, http.MethodPost, "/v1/handoffs/"+url.PathEscape(id)+"/accept", nil, &out)
	return out, err
}

func (h *httpBackend) arrive(ctx context.Context, name string) (sidecar.CheckpointResponse, error) {
	var out sidecar.CheckpointResponse
	err := h.do(ctx, http.MethodPost, "/v1/checkpoints/"+url.PathEscape(name)+"/arrive", nil, &out)
	return out, err
}

func (h *httpBackend) wait(ctx context.Context, name string, agents []string, count int, timeout time.Duration) (sidecar.CheckpointResponse, error) {
	var out sidecar.CheckpointResponse
	err := h.do(ctx, http.MethodPost, "/v1/checkpoints/"+url.PathEscape(name)+"/wait",
		sidecar.WaitRequest{Agents: agents, Count: count, Timeout: durString(timeout)}, &out)
	return out, err
}
