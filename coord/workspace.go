package coord

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cogos-dev/coord/subjects"
)

// NamespaceFile is the file, relative to a workspace root, that names the
// workspace's namespace (one line; surrounding whitespace is ignored).
const NamespaceFile = ".cog/namespace"

// Namespace returns the namespace of the workspace at workspaceRoot. The
// first of these rules that gives a name wins:
//
//  1. COG_NAMESPACE, if set (it must be a valid namespace as it is).
//  2. The first line of <root>/.cog/namespace, if the file exists (it too
//     must be valid as it is).
//  3. The URL of the git remote "origin" in <root>/.git/config (read as a
//     file; git is not run), normalized to host/owner/repo: scheme, user,
//     port and a ".git" suffix are dropped and the host is lower-cased, so
//     https://github.com/o/r.git, ssh://git@github.com/o/r and
//     git@github.com:o/r all give "github.com/o/r". Paths on github.com,
//     gitlab.com and bitbucket.org are lower-cased too (those hosts ignore
//     case). A worktree's or submodule's ".git" file is followed.
//  4. The base name of the root, after resolving symlinks.
//
// Names from rules 3 and 4 are sanitized: whitespace and control characters
// become '-', and a name longer than 64 bytes is cut and given a hash suffix
// (so two long names never collide). So the same repository checked out at
// different paths on different machines shares one namespace, and two
// different repositories never do. Rule 4 is the weak one: two unrelated
// directories with the same base name share a namespace; give them a
// .cog/namespace file or a git remote.
func Namespace(workspaceRoot string) (string, error) {
	ws, err := openWorkspace(workspaceRoot)
	if err != nil {
		return "", err
	}
	return ws.namespace()
}

// workspace is a resolved workspace root.
type workspace struct {
	abs  string // absolute, cleaned, as given
	real string // abs with symlinks resolved (abs if it does not exist)
}

func openWorkspace(root string) (workspace, error) {
	if root == "" {
		return workspace{}, fmt.Errorf("%w: empty workspace root", ErrInvalidPath)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return workspace{}, fmt.Errorf("%w: workspace root %q: %v", ErrInvalidPath, root, err)
	}
	ws := workspace{abs: abs, real: abs}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		ws.real = r
	}
	return ws, nil
}

func (ws workspace) namespace() (string, error) {
	if ns := os.Getenv("COG_NAMESPACE"); ns != "" {
		if err := subjects.ValidateNamespace(ns); err != nil {
			return "", fmt.Errorf("%w (from COG_NAMESPACE)", err)
		}
		return ns, nil
	}
	file := filepath.Join(ws.real, filepath.FromSlash(NamespaceFile))
	if ns, err := readFirstLine(file); err == nil {
		if err := subjects.ValidateNamespace(ns); err != nil {
			return "", fmt.Errorf("%w (from %s)", err, file)
		}
		return ns, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("coord: reading %s: %w", file, err)
	}
	if u := originURL(ws.real); u != "" {
		if name := normalizeRemote(u); name != "" {
			return SanitizeNamespace(name), nil
		}
	}
	return SanitizeNamespace(filepath.Base(ws.real)), nil
}

// readFirstLine returns the first non-empty line of a file, trimmed.
func readFirstLine(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if s := strings.TrimSpace(line); s != "" {
			return s, nil
		}
	}
	return "", fmt.Errorf("%w: %s is empty", ErrInvalidNamespace, file)
}

// SanitizeNamespace turns any name into a valid namespace: invalid UTF-8,
// whitespace and control characters become '-'; an empty name becomes
// DefaultNamespace; a name longer than subjects.MaxNamespaceBytes keeps its
// first bytes (whole runes) and ends in '-' and 16 hex digits of its
// SHA-256, so distinct long names stay distinct.
func SanitizeNamespace(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(name[i:]); n == 1 {
				b.WriteByte('-')
				continue
			}
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			b.WriteByte('-')
			continue
		}
		b.WriteRune(r)
	}
	s := b.String()
	if s == "" {
		return DefaultNamespace
	}
	if len(s) <= subjects.MaxNamespaceBytes {
		return s
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:8])
	cut := subjects.MaxNamespaceBytes - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// originURL returns the URL of remote "origin" from the git config of the
// repository at root, or "" if there is none.
func originURL(root string) string {
	cfg := gitConfigPath(root)
	if cfg == "" {
		return ""
	}
	f, err := os.Open(cfg)
	if err != nil {
		return ""
	}
	defer f.Close()
	inOrigin := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			inOrigin = isOriginSection(line)
			continue
		}
		if !inOrigin {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "url") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// isOriginSection reports whether a git config section header is
// [remote "origin"].
func isOriginSection(line string) bool {
	inner, ok := strings.CutSuffix(strings.TrimPrefix(line, "["), "]")
	if !ok {
		return false
	}
	sect, sub, ok := strings.Cut(inner, " ")
	return ok && strings.EqualFold(sect, "remote") && strings.TrimSpace(sub) == `"origin"`
}

// gitConfigPath finds the config file of the repository at root: .git/config,
// or, when .git is a file ("gitdir: ..." in worktrees and submodules), the
// config of the directory it points to (or of its commondir).
func gitConfigPath(root string) string {
	dotgit := filepath.Join(root, ".git")
	fi, err := os.Stat(dotgit)
	if err != nil {
		return ""
	}
	dir := dotgit
	if !fi.IsDir() {
		line, err := readFirstLine(dotgit)
		if err != nil {
			return ""
		}
		gd, ok := strings.CutPrefix(line, "gitdir:")
		if !ok {
			return ""
		}
		dir = strings.TrimSpace(gd)
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
	}
	if common, err := readFirstLine(filepath.Join(dir, "commondir")); err == nil {
		if !filepath.IsAbs(common) {
			common = filepath.Join(dir, common)
		}
		dir = common
	}
	return filepath.Join(dir, "config")
}

// caseInsensitiveHosts ignore the case of owner and repository names.
var caseInsensitiveHosts = map[string]bool{"github.com": true, "gitlab.com": true, "bitbucket.org": true}

// normalizeRemote turns a git remote URL into host/path with no scheme,
// user, port or ".git" suffix. Local remotes (a path, file://) give the
// cleaned path.
func normalizeRemote(u string) string {
	u = strings.TrimSpace(u)
	host, p := "", ""
	if scheme, rest, ok := strings.Cut(u, "://"); ok && !strings.ContainsAny(scheme, "/@:") {
		if strings.EqualFold(scheme, "file") {
			p = rest
		} else {
			hostport, tail, _ := strings.Cut(rest, "/")
			host, p = hostport, tail
		}
	} else if i := strings.Index(u, ":"); i > 0 && !strings.Contains(u[:i], "/") {
		// scp-like: [user@]host:path
		host, p = u[:i], u[i+1:]
	} else {
		p = u
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	if strings.HasPrefix(host, "[") { // [ipv6]:port
		if end := strings.Index(host, "]"); end > 0 {
			host = host[1:end]
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	host = strings.ToLower(host)
	p = strings.TrimSuffix(strings.Trim(path.Clean("/"+strings.Trim(p, "/")), "/"), ".git")
	p = strings.TrimSuffix(p, "/")
	if caseInsensitiveHosts[host] {
		p = strings.ToLower(p)
	}
	switch {
	case host == "" && p == "":
		return ""
	case host == "":
		return p
	case p == "":
		return host
	}
	return host + "/" + p
}

// relPath normalizes a path given to the seed functions into the cleaned
// relative path that names its claim. Relative paths are taken relative to
// the root; absolute paths must lie inside it (under the root as given, or
// under the root with symlinks resolved, or resolve into it through their
// own existing ancestors). The path itself need not exist.
func (ws workspace) relPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w: %q holds a NUL byte", ErrInvalidPath, p)
	}
	if !filepath.IsAbs(p) {
		return subjects.CleanPath(filepath.ToSlash(p))
	}
	p = filepath.Clean(p)
	for _, root := range []string{ws.abs, ws.real} {
		if rel, ok := within(root, p); ok {
			return subjects.CleanPath(rel)
		}
	}
	if real := resolveExisting(p); real != p {
		if rel, ok := within(ws.real, real); ok {
			return subjects.CleanPath(rel)
		}
	}
	return "", fmt.Errorf("%w: %q is outside the workspace root %s", ErrInvalidPath, p, ws.abs)
}

// within returns p relative to root (slash-separated) if p is inside root.
func within(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return "", false
	}
	rel = filepath.ToSlash(rel)
	if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// resolveExisting resolves the symlinks of the longest existing ancestor of
// the absolute, cleaned path p and appends the rest unchanged.
func resolveExisting(p string) string {
	rest := ""
	for dir := p; ; {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			if rest == "" {
				return r
			}
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p
		}
		if rest == "" {
			rest = filepath.Base(dir)
		} else {
			rest = filepath.Join(filepath.Base(dir), rest)
		}
		dir = parent
	}
}
