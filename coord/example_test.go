package coord_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/coord/embedded"
)

// exampleEnv starts an embedded nats-server with JetStream (what
// `coord-agent serve` runs when no URL is configured), points the
// package-level functions at it through COG_NATS_URL, and returns a
// workspace root. The returned function undoes all of it.
func exampleEnv(agent string) (root string, stop func()) {
	dir, err := os.MkdirTemp("", "coord-example-")
	if err != nil {
		panic(err)
	}
	opts, err := embedded.Options(embedded.Config{StoreDir: filepath.Join(dir, "store"), Port: -1})
	if err != nil {
		panic(err)
	}
	srv, err := embedded.Start(opts, nil)
	if err != nil {
		panic(err)
	}
	root = filepath.Join(dir, "workspace")
	if err := os.MkdirAll(root, 0o755); err != nil {
		panic(err)
	}
	restore := setenv(map[string]string{
		"COG_NATS_URL":  srv.ClientURL(),
		"COG_NAMESPACE": "example",
		"COG_AGENT_ID":  agent,
		"COG_CLAIM_TTL": "",
	})
	return root, func() {
		coord.CloseDefaultClients()
		restore()
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}
}

// setenv sets (or, for "", unsets) variables and returns a function that
// restores them.
func setenv(vars map[string]string) func() {
	old := map[string]*string{}
	for k, v := range vars {
		if prev, ok := os.LookupEnv(k); ok {
			old[k] = &prev
		} else {
			old[k] = nil
		}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	return func() {
		for k, v := range old {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}
}

// Claims as the seed made them: a workspace root, a path, a reason. A
// second agent (another COG_AGENT_ID) is told who holds the path.
func ExampleCreateClaim() {
	root, stop := exampleEnv("alice")
	defer stop()

	c, err := coord.CreateClaim(root, "src/main.go", "refactoring the entry point")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(c.Agent, "holds", c.Path, "for", c.Reason)

	// Absolute paths inside the root name the same claim.
	owner, _ := coord.ClaimOwner(root, filepath.Join(root, "src", "main.go"))
	fmt.Println("owner:", owner)

	os.Setenv("COG_AGENT_ID", "bob")
	_, err = coord.CreateClaim(root, "./src/main.go", "fix a bug")
	fmt.Println("bob:", errors.Is(err, coord.ErrClaimed), err)

	os.Setenv("COG_AGENT_ID", "alice")
	if err := coord.ReleaseClaim(root, "src/main.go"); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println("claimed after release:", coord.IsClaimed(root, "src/main.go"))
	// Output:
	// alice holds src/main.go for refactoring the entry point
	// owner: alice
	// bob: true coord: src/main.go is claimed by alice
	// claimed after release: false
}

// A handoff from one agent to another, accepted by the ID ListHandoffs
// returns (the seed took a file name).
func ExampleAcceptHandoff() {
	root, stop := exampleEnv("alice")
	defer stop()

	if _, err := coord.CreateHandoff(root, "bob", "src/main.go", "please review"); err != nil {
		fmt.Println("error:", err)
		return
	}

	os.Setenv("COG_AGENT_ID", "bob")
	pending, err := coord.ListHandoffs(root, "") // "" is the current agent
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, h := range pending {
		fmt.Printf("%s -> %s: %s (%s)\n", h.From, h.To, h.Artifact, h.Message)
		if err := coord.AcceptHandoff(root, h.ID); err != nil {
			fmt.Println("error:", err)
		}
	}
	pending, _ = coord.ListHandoffs(root, "")
	fmt.Println("pending after accept:", len(pending))
	// Output:
	// alice -> bob: src/main.go (please review)
	// pending after accept: 0
}

// Broadcasts on a channel, listed oldest first.
func ExampleListBroadcasts() {
	root, stop := exampleEnv("alice")
	defer stop()

	coord.CreateBroadcast(root, "general", "starting the migration")
	os.Setenv("COG_AGENT_ID", "bob")
	coord.CreateBroadcast(root, "general", "holding off on the schema")

	list, err := coord.ListBroadcasts(root, "general", time.Hour)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, b := range list {
		fmt.Printf("%s: %s\n", b.Agent, b.Message)
	}
	// Output:
	// alice: starting the migration
	// bob: holding off on the schema
}

// Two agents meet at a checkpoint. WaitCheckpoint is woken by the last
// arrival, and a timeout names who is missing.
func ExampleWaitCheckpoint() {
	root, stop := exampleEnv("alice")
	defer stop()

	coord.CreateCheckpoint(root, "tests-green")
	err := coord.WaitCheckpoint(root, "tests-green", []string{"alice", "bob"}, 200*time.Millisecond)
	fmt.Println(err)

	os.Setenv("COG_AGENT_ID", "bob")
	id, _ := coord.CreateCheckpoint(root, "tests-green")
	fmt.Println(id, "arrived")
	err = coord.WaitCheckpoint(root, "tests-green", []string{"alice", "bob"}, 5*time.Second)
	fmt.Println("wait:", err)
	// Output:
	// coord: checkpoint "tests-green" timed out waiting for bob (arrived: alice)
	// bob arrived
	// wait: <nil>
}

// Workspaces map to namespaces: checkouts of one repository share one,
// whatever their path and remote spelling.
func ExampleNamespace() {
	restore := setenv(map[string]string{"COG_NAMESPACE": ""})
	defer restore()
	dir, _ := os.MkdirTemp("", "coord-example-")
	defer os.RemoveAll(dir)
	for i, url := range []string{"https://github.com/cogos-dev/coord.git", "git@github.com:cogos-dev/coord"} {
		root := filepath.Join(dir, fmt.Sprint("checkout-", i))
		os.MkdirAll(filepath.Join(root, ".git"), 0o755)
		os.WriteFile(filepath.Join(root, ".git", "config"), []byte("[remote \"origin\"]\n\turl = "+url+"\n"), 0o644)
		ns, err := coord.Namespace(root)
		fmt.Println(ns, err)
	}
	plain := filepath.Join(dir, "scratch")
	os.MkdirAll(plain, 0o755)
	fmt.Println(coord.Namespace(plain))
	// Output:
	// github.com/cogos-dev/coord <nil>
	// github.com/cogos-dev/coord <nil>
	// scratch <nil>
}

// Import loads a workspace's old .cog state; a second run changes nothing.
func ExampleImport() {
	root, stop := exampleEnv("migrator")
	defer stop()
	write := func(rel, content string) {
		p := filepath.Join(root, ".cog", filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	write("claims/src_main.go.claim", `{"path":"src/main.go","agent":"alice","reason":"refactor","claimed_at":"2026-11-20T09:14:03Z"}`)
	write("claims/broken.claim", `{"path":`)
	write("handoffs/1763630400-alice-bob.json", `{"from":"alice","to":"bob","artifact":"src/main.go","message":"review","timestamp":"2026-11-20T09:20:00Z"}`)
	write("broadcasts/general/1763629200-alice.msg", `{"channel":"general","agent":"alice","message":"hi","timestamp":"2026-11-20T09:00:00.1Z"}`)
	write("broadcasts/general/1763629200-bob.msg", `{"channel":"general","agent":"bob","message":"hi","timestamp":"2026-11-20T09:00:00.2Z"}`)
	write("signals/checkpoint/phase-1/alice", "2026-11-20T12:30:00Z\n")

	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		report, err := coord.Import(ctx, nil, root) // nil: the default client for root
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("run %d:\n%s", run, report)
	}
	owner, _ := coord.ClaimOwner(root, "src/main.go")
	fmt.Println("src/main.go held by", owner)
	// Output:
	// run 1:
	// claims      imported 1, already present 0, failed 1
	// handoffs    imported 1, already present 0, failed 0
	// broadcasts  imported 2, already present 0, failed 0
	// checkpoints imported 1, already present 0, failed 0
	// run 2:
	// claims      imported 0, already present 1, failed 1
	// handoffs    imported 0, already present 1, failed 0
	// broadcasts  imported 0, already present 2, failed 0
	// checkpoints imported 0, already present 1, failed 0
	// src/main.go held by alice
}
