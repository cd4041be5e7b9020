package sidecar

import "net/http"

// extraRoutes adds the broadcast, handoff and checkpoint routes.
func (a *api) extraRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/broadcasts/{channel}", a.publish)
	mux.HandleFunc("GET /v1/broadcasts/{channel}", a.broadcasts)
	mux.HandleFunc("POST /v1/handoffs", a.handoff)
	mux.HandleFunc("GET /v1/handoffs", a.handoffs)
	mux.HandleFunc("POST /v1/handoffs/{id}/accept", a.accept)
	mux.HandleFunc("POST /v1/handoffs/{id}/reject", a.reject)
	mux.HandleFunc("POST /v1/checkpoints/{name}/arrive", a.arrive)
	mux.HandleFunc("GET /v1/checkpoints/{name}", a.arrivals)
	mux.HandleFunc("POST /v1/checkpoints/{name}/wait", a.wait)
}
