package sidecar

import (
	"net/http"

	"github.com/cogos-dev/coord/coord"
)

// noBody is the request type of calls that take no body: their body, if
// any, is not read.
type noBody struct{}

// handle adapts one API call to HTTP: the body is decoded strictly into Req
// (unless Req is noBody), the requesting agent's client is resolved, and
// fn's answer is written as JSON with 200, or its error as an ErrorBody by
// fail. Streaming calls (follow) are written by hand.
func handle[Req any](a *api, fn func(r *http.Request, c *coord.Client, req Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if _, none := any(req).(noBody); !none {
			if err := decode(r, &req); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		c, err := a.client(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		v, err := fn(r, c, req)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}
