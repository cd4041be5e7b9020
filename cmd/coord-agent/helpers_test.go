package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cogos-dev/coord/internal/httpx"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// bin is the coord-agent binary built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coord-agent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "coord-agent")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building coord-agent:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// baseEnv is the test process's environment without anything that would
// point the binary at another server, sidecar or data dir.
func baseEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "COG_") || strings.HasPrefix(kv, "NATS_URL=") || strings.HasPrefix(kv, "XDG_DATA_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "XDG_DATA_HOME="+t.TempDir())
}

// proc is a running `coord-agent serve`.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string
	info    sidecar.Info
	token   string // the local API's token, from the data dir
	out     *lockedWriter
	done    chan error
}

// serve starts `coord-agent serve` on dataDir with free ports and waits
// until its API answers.
func serve(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	p := serveNoWait(t, dataDir, args...)
	p.waitUp(t, 20*time.Second)
	return p
}

// serveNoWait starts `coord-agent serve` without waiting for it.
func serveNoWait(t *testing.T, dataDir string, args ...string) *proc {
	all := append([]string{"serve", "--data", dataDir, "--port", "0", "--http", "127.0.0.1:0", "--log-level", "debug"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = baseEnv(t)
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return nil
	}
	p := &proc{t: t, cmd: cmd, dataDir: dataDir, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if strings.Contains(p.output(), "DATA RACE") {
			t.Errorf("the race detector reported a race in serve %s", dataDir)
		}
		if t.Failed() {
			t.Logf("serve %s output:\n%s", dataDir, p.output())
		}
	})
	return p
}

// waitUp waits until the sidecar wrote sidecar.json and its API answers.
func (p *proc) waitUp(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		in, err := sidecar.ReadInfo(p.dataDir)
		if err == nil && in.PID == p.cmd.Process.Pid {
			if resp, err := http.Get(in.HTTP + "/v1/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					p.info = in
					tok, err := httpx.ReadTokenFile(sidecar.TokenFile(p.dataDir))
					if err != nil {
						t.Fatalf("token file: %v", err)
					}
					p.token = tok
					return
				}
			}
		}
		if !p.running() || time.Now().After(deadline) {
			t.Fatalf("serve did not come up (running %v):\n%s", p.running(), p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

func (p *proc) output() string { return p.out.String() }

// kill9 kills the sidecar with SIGKILL: no chance to release anything.
func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
	p.done <- errors.New("killed")
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		p.t.Fatalf("serve did not stop within 15s of SIGTERM:\n%s", p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// cli runs coord-agent with args, as agent (if not empty), finding the
// sidecar through dataDir.
func cli(t *testing.T, dataDir, agent string, args ...string) result {
	t.Helper()
	return cliCtx(t, context.Background(), dataDir, agent, args...)
}

func cliCtx(t *testing.T, ctx context.Context, dataDir, agent string, args ...string) result {
	t.Helper()
	return cliEnv(t, ctx, nil, dataDir, agent, args...)
}

// cliEnv is cliCtx with extra environment variables (KEY=value).
func cliEnv(t *testing.T, ctx context.Context, extra []string, dataDir, agent string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(baseEnv(t), "COG_DATA_DIR="+dataDir), extra...)
	if agent != "" {
		cmd.Env = append(cmd.Env, "COG_AGENT_ID="+agent)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if strings.Contains(stderr.String(), "DATA RACE") {
		t.Errorf("the race detector reported a race in coord-agent %v:\n%s", args, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running coord-agent %v: %v", args, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, dataDir, agent string, args ...string) result {
	t.Helper()
	r := cli(t, dataDir, agent, args...)
	if r.code != 0 {
		t.Fatalf("coord-agent %v: %v", args, r)
	}
	return r
}

// mustJSON runs the CLI with --json and decodes its stdout into v.
func mustJSON(t *testing.T, dataDir, agent string, v any, args ...string) {
	t.Helper()
	r := must(t, dataDir, agent, append(args, "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("coord-agent %v --json: %v\n%s", args, err, r.stdout)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// lockedWriter is a bytes.Buffer shared by a process's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// running is a CLI process left running (broadcasts --follow).
type running struct {
	cmd  *exec.Cmd
	out  *lockedWriter
	done chan struct{}
}

func startCLI(t *testing.T, ctx context.Context, dataDir, agent string, args ...string) *running {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(baseEnv(t), "COG_DATA_DIR="+dataDir, "COG_AGENT_ID="+agent)
	r := &running{cmd: cmd, out: &lockedWriter{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-r.done
	})
	return r
}

// waitFor waits until the output contains s, compacting JSON whitespace.
func (r *running) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := strings.ReplaceAll(r.out.String(), `": "`, `":"`)
		if strings.Contains(out, s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %s:\n%s", s, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// authed adds the sidecar's token to req.
func (p *proc) authed(req *http.Request) *http.Request {
	req.Header.Set("Authorization", "Bearer "+p.token)
	return req
}
