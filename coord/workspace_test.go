package coord

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

// mkWorkspace makes a directory named name in a temp dir, with the given
// files (relative path -> content).
func mkWorkspace(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		f := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func gitConfig(url string) string {
	return "[core]\n\trepositoryformatversion = 0\n[remote \"upstream\"]\n\turl = https://example.com/wrong/repo\n" +
		"[remote \"origin\"]\n\turl = " + url + "\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n"
}

func TestPathNormalization(t *testing.T) {
	root := mkWorkspace(t, "ws", nil)
	ws, err := openWorkspace(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want string // "" means rejected with ErrInvalidPath
	}{
		{"src/a.go", "src/a.go"},
		{"./src/a.go", "src/a.go"},
		{"src//a.go", "src/a.go"},
		{"src/./b/../a.go", "src/a.go"},
		{root + "/src/a.go", "src/a.go"},
		{root + "//src/./a.go", "src/a.go"},
		{ws.real + "/src/a.go", "src/a.go"},
		{"does/not/exist/yet.txt", "does/not/exist/yet.txt"},
		{"dir/", "dir"},
		{"../x", ""},
		{"src/../../x", ""},
		{"/etc/passwd", ""},
		{filepath.Dir(root) + "/other/a.go", ""},
		{root + "-sibling/a.go", ""},
		{root, ""},
		{".", ""},
		{"", ""},
		{"a\x00b", ""},
	}
	for _, tc := range tests {
		got, err := ws.relPath(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("relPath(%q) = %q, %v; want ErrInvalidPath", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("relPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestPathSymlinkedRoot: a root reached through a symlink (as /tmp is
// /private/tmp on macOS) matches absolute paths through either name, and a
// root named by its real path matches paths through the link.
func TestPathSymlinkedRoot(t *testing.T) {
	base := t.TempDir()
	realRoot := filepath.Join(base, "real", "ws")
	if err := os.MkdirAll(filepath.Join(realRoot, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "alias")
	if err := os.Symlink(filepath.Join(base, "real"), link); err != nil {
		t.Skipf("symlinks unsupported: %v", err)
	}
	linkRoot := filepath.Join(link, "ws")
	for _, root := range []string{realRoot, linkRoot} {
		ws, err := openWorkspace(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{
			filepath.Join(realRoot, "src/a.go"),
			filepath.Join(linkRoot, "src/a.go"),
			filepath.Join(realRoot, "src/new/dir/a.go"), // does not exist
			filepath.Join(linkRoot, "src/new/dir/a.go"),
		} {
			got, err := ws.relPath(p)
			want := strings.TrimPrefix(p, realRoot+"/")
			want = strings.TrimPrefix(want, linkRoot+"/")
			if err != nil || got != want {
				t.Errorf("root %s: relPath(%s) = %q, %v; want %q", root, p, got, err, want)
			}
		}
		if _, err := ws.relPath(filepath.Join(link, "elsewhere")); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("root %s: path beside the root: %v, want ErrInvalidPath", root, err)
		}
	}
	a, err := Namespace(realRoot)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Namespace(linkRoot)
	if err != nil || a != b {
		t.Fatalf("Namespace: real %q, link %q (%v); want equal", a, b, err)
	}
}

func TestNormalizeRemote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/o/r.git", "github.com/o/r"},
		{"https://github.com/o/r", "github.com/o/r"},
		{"https://github.com/o/r/", "github.com/o/r"},
		{"https://github.com/O/R.git", "github.com/o/r"},
		{"git@github.com:o/r", "github.com/o/r"},
		{"git@github.com:o/r.git", "github.com/o/r"},
		{"ssh://git@github.com/o/r.git", "github.com/o/r"},
		{"ssh://git@GitHub.com:22/o/r.git", "github.com/o/r"},
		{"https://user:token@github.com/o/r.git", "github.com/o/r"},
		{"git://github.com/o/r.git", "github.com/o/r"},
		{"https://git.example.com/Team/Repo.git", "git.example.com/Team/Repo"},
		{"git@git.example.com:Team/Repo.git", "git.example.com/Team/Repo"},
		{"https://[::1]:8080/a/b.git", "::1/a/b"},
		{"/srv/git/r.git", "srv/git/r"},
		{"file:///srv/git/r.git", "srv/git/r"},
	}
	for _, tc := range tests {
		if got := normalizeRemote(tc.in); got != tc.want {
			t.Errorf("normalizeRemote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNamespaceRules(t *testing.T) {
	t.Setenv("COG_NAMESPACE", "")
	long := strings.Repeat("x", 100)
	tests := []struct {
		name  string
		dir   string
		files map[string]string
		env   string
		want  string
	}{
		{name: "base name", dir: "myproj", want: "myproj"},
		{name: "base name with space", dir: "my proj", want: "my-proj"},
		{name: "namespace file", dir: "ws", files: map[string]string{".cog/namespace": "\n  team-a \n"}, want: "team-a"},
		{name: "file beats git", dir: "ws", files: map[string]string{
			".cog/namespace": "team-a", ".git/config": gitConfig("git@github.com:o/r.git")}, want: "team-a"},
		{name: "env beats all", dir: "ws", env: "from-env", files: map[string]string{
			".cog/namespace": "team-a", ".git/config": gitConfig("git@github.com:o/r.git")}, want: "from-env"},
		{name: "git https", dir: "ws1", files: map[string]string{".git/config": gitConfig("https://github.com/o/r.git")}, want: "github.com/o/r"},
		{name: "git scp", dir: "ws2", files: map[string]string{".git/config": gitConfig("git@github.com:o/r")}, want: "github.com/o/r"},
		{name: "git quoted url", dir: "ws2", files: map[string]string{".git/config": gitConfig(`"git@github.com:o/r"`)}, want: "github.com/o/r"},
		{name: "git without origin", dir: "plain", files: map[string]string{".git/config": "[core]\n\tbare = false\n"}, want: "plain"},
		{name: "worktree gitdir file", dir: "wt", files: map[string]string{
			".git":                              "gitdir: .main/.git/worktrees/wt\n",
			".main/.git/worktrees/wt/commondir": "../..\n",
			".main/.git/config":                 gitConfig("https://gitlab.com/Grp/Proj.git"),
		}, want: "gitlab.com/grp/proj"},
		{name: "long base name", dir: long, want: SanitizeNamespace(long)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COG_NAMESPACE", tc.env)
			root := mkWorkspace(t, tc.dir, tc.files)
			got, err := Namespace(root)
			if err != nil || got != tc.want {
				t.Fatalf("Namespace = %q, %v; want %q", got, err, tc.want)
			}
			if err := subjects.ValidateNamespace(got); err != nil {
				t.Fatalf("Namespace %q is not valid: %v", got, err)
			}
		})
	}
}

// TestNamespaceSameRepoTwoCheckouts: the rule's purpose. Two checkouts of one
// repository at different paths (and remote spellings) share a namespace;
// two repositories do not, even with the same directory name.
func TestNamespaceSameRepoTwoCheckouts(t *testing.T) {
	t.Setenv("COG_NAMESPACE", "")
	a := mkWorkspace(t, "checkout-a", map[string]string{".git/config": gitConfig("https://github.com/o/r.git")})
	b := mkWorkspace(t, "elsewhere", map[string]string{".git/config": gitConfig("git@github.com:o/r")})
	c := mkWorkspace(t, "checkout-a", map[string]string{".git/config": gitConfig("git@github.com:o/other")})
	na, _ := Namespace(a)
	nb, _ := Namespace(b)
	nc, _ := Namespace(c)
	if na != nb || na == nc {
		t.Fatalf("namespaces: a=%q b=%q c=%q; want a==b, a!=c", na, nb, nc)
	}
}

func TestNamespaceInvalidExplicit(t *testing.T) {
	t.Setenv("COG_NAMESPACE", "")
	root := mkWorkspace(t, "ws", map[string]string{".cog/namespace": strings.Repeat("n", 65)})
	if _, err := Namespace(root); !errors.Is(err, ErrInvalidNamespace) {
		t.Fatalf("over-long .cog/namespace: %v, want ErrInvalidNamespace", err)
	}
	t.Setenv("COG_NAMESPACE", strings.Repeat("n", 65))
	if _, err := Namespace(t.TempDir()); !errors.Is(err, ErrInvalidNamespace) {
		t.Fatalf("over-long COG_NAMESPACE: %v, want ErrInvalidNamespace", err)
	}
	if _, err := Namespace(""); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("empty root: %v, want ErrInvalidPath", err)
	}
}

func TestSanitizeNamespace(t *testing.T) {
	a := strings.Repeat("é", 40) + "a" // 81 bytes
	b := strings.Repeat("é", 40) + "b"
	sa, sb := SanitizeNamespace(a), SanitizeNamespace(b)
	for _, s := range []string{sa, sb} {
		if err := subjects.ValidateNamespace(s); err != nil {
			t.Fatalf("SanitizeNamespace gave invalid %q: %v", s, err)
		}
	}
	if sa == sb {
		t.Fatalf("two long names collide: %q", sa)
	}
	tests := map[string]string{
		"":         DefaultNamespace,
		"a b\tc":   "a-b-c",
		"ok/name":  "ok/name",
		"bad\xffx": "bad-x",
	}
	for in, want := range tests {
		if got := SanitizeNamespace(in); got != want {
			t.Errorf("SanitizeNamespace(%q) = %q, want %q", in, got, want)
		}
	}
}
