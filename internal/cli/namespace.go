package cli

import (
	"os"
	"path/filepath"

	"github.com/cogos-dev/coord/subjects"
)

// namespaceFor maps --workspace to a namespace; "" when neither it nor
// $COG_NAMESPACE is set (the sidecar's, or coord's default, applies).
func namespaceFor(workspace string) (string, error) {
	if ns := os.Getenv("COG_NAMESPACE"); ns != "" {
		return ns, subjects.ValidateNamespace(ns)
	}
	if workspace == "" {
		return "", nil
	}
	abs, err := filepath.Abs(workspace)
	if err != nil {
		return "", err
	}
	ns := filepath.Base(abs)
	return ns, subjects.ValidateNamespace(ns)
}
