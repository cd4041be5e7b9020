package cli

import (
	"os"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// namespaceFor maps --workspace to its namespace by coord.Namespace's rule
// ($COG_NAMESPACE, .cog/namespace, git origin, base name). Without a
// workspace it is $COG_NAMESPACE, or "" (the sidecar's, or coord's default).
func namespaceFor(workspace string) (string, error) {
	if workspace == "" {
		ns := os.Getenv("COG_NAMESPACE")
		if ns == "" {
			return "", nil
		}
		return ns, subjects.ValidateNamespace(ns)
	}
	return coord.Namespace(workspace)
}
