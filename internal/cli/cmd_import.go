package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// importItem is the JSON of one imported file.
type importItem struct {
	Kind  coord.ImportKind `json:"kind"`
	File  string           `json:"file"`
	What  string           `json:"what"`
	ID    string           `json:"id,omitempty"`
	Error string           `json:"error,omitempty"`
}

// importReport is the JSON of `import --json`.
type importReport struct {
	Root      string       `json:"root"`
	Namespace string       `json:"namespace"`
	Imported  []importItem `json:"imported"`
	Skipped   []importItem `json:"skipped"`
	Failed    []importItem `json:"failed"`
}

func items(in []coord.ImportItem) []importItem {
	out := make([]importItem, 0, len(in))
	for _, it := range in {
		j := importItem{Kind: it.Kind, File: it.File, What: it.What, ID: it.ID}
		if it.Err != nil {
			j.Error = it.Err.Error()
		}
		out = append(out, j)
	}
	return out
}

// runImport loads the seed's file-based state (.cog/ under the root) into
// the root's namespace. It talks to NATS directly: the files are local.
func runImport(e *env, args []string) error {
	c := e.command("import")
	var ttl durationFlag
	c.fs.Var(&ttl, "claim-ttl", "lease of imported claims: how long their agents have to claim them again (default 15m)")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	root := c.pos[0]
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return usagef("import: %s is not a directory", root)
	}
	if fi, err := os.Stat(root + "/.cog"); err != nil || !fi.IsDir() {
		return usagef("import: %s has no .cog directory to import", root)
	}
	var opts []coord.ImportOption
	if ttl.set {
		if ttl.d < coord.MinClaimTTL || ttl.d > coord.MaxClaimTTL {
			return usagef("--claim-ttl %v: want %v to %v", ttl.d, coord.MinClaimTTL, coord.MaxClaimTTL)
		}
		opts = append(opts, coord.WithImportClaimTTL(ttl.d))
	}
	if e.ns == "" {
		ns, err := coord.Namespace(root)
		if err != nil {
			return usagef("import: %v", err)
		}
		e.ns = ns
	}
	info, infoErr := sidecar.ReadInfo(e.dataDir())
	b, err := e.openDirect(e.ctx, info, infoErr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := coord.Import(e.ctx, b.c, root, opts...)
	if errors.Is(err, fs.ErrNotExist) {
		return usagef("import: %v", err)
	}
	if err != nil {
		return err
	}
	if e.g.json {
		if err := e.printJSON(importReport{Root: root, Namespace: b.c.Namespace(),
			Imported: items(rep.Imported), Skipped: items(rep.Skipped), Failed: items(rep.Failed)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "imported %s into namespace %s\n%s", root, b.c.Namespace(), rep.String())
		for _, it := range rep.Failed {
			fmt.Fprintf(e.stdout, "failed: %s\n", it)
		}
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("import: %d of %d files failed (listed on stdout)", len(rep.Failed),
			len(rep.Failed)+len(rep.Imported)+len(rep.Skipped))
	}
	return nil
}
