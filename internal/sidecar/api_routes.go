package sidecar

import "net/http"

// extraRoutes adds the broadcast, handoff and checkpoint routes.
func (a *api) extraRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/broadcasts/{channel}", handle(a, a.publish))
	mux.HandleFunc("GET /v1/broadcasts/{channel}", a.broadcasts)
	mux.HandleFunc("POST /v1/handoffs", handle(a, a.handoff))
	mux.HandleFunc("GET /v1/handoffs", handle(a, a.handoffs))
	mux.HandleFunc("POST /v1/handoffs/{id}/accept", handle(a, a.accept))
	mux.HandleFunc("POST /v1/handoffs/{id}/reject", handle(a, a.reject))
	mux.HandleFunc("POST /v1/checkpoints/{name}/arrive", handle(a, a.arrive))
	mux.HandleFunc("GET /v1/checkpoints/{name}", handle(a, a.arrivals))
	mux.HandleFunc("POST /v1/checkpoints/{name}/wait", handle(a, a.wait))
}
