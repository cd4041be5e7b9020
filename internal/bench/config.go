package bench

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config selects the target server and the sizes of every scenario.
type Config struct {
	// NATSURL is an external server; empty starts an embedded one in this
	// process (store in a temporary directory).
	NATSURL string
	// TCP makes clients of the embedded server connect over loopback TCP
	// instead of in-process (the sidecar's clients are in-process).
	TCP bool
	// JSON prints the results as JSON instead of a table.
	JSON bool
	// Small replaces every size with a tiny preset (CI smoke run).
	Small bool
	// Run selects scenarios whose name matches this regular expression.
	Run string

	// Duration is the measuring time of each timed scenario and size (the
	// coord workload and its floor get this much each, interleaved).
	Duration time.Duration
	// Agents are the concurrency levels of the uncontended scenarios
	// (claim+release, try-acquire, broadcast publish, handoff).
	Agents []int
	// Contended are the numbers of agents fighting over one path.
	Contended []int
	// Subscribers is the fan-out of a broadcast channel.
	Subscribers int
	// FanoutMessages is how many messages are published to the subscribers.
	FanoutMessages int
	// CheckpointAgents meet at each checkpoint, CheckpointRounds times.
	CheckpointAgents, CheckpointRounds int
	// ListSizes are the numbers of claims held while List is timed.
	ListSizes []int
	// KeepaliveAgents each hold KeepaliveClaims claims with KeepaliveTTL.
	KeepaliveAgents, KeepaliveClaims int
	KeepaliveTTL                     time.Duration
	// Waiters block on as many held paths, then all are released.
	Waiters int
	// Progress, when set, gets one line as each scenario starts and ends
	// (the full run takes a few minutes).
	Progress io.Writer
	// HeapProfile, when set, is where the keepalive scenario writes a heap
	// profile at the end of its window (with every claim still held).
	HeapProfile string
}

// DefaultConfig is the full-size run the targets of issue 7 are set for.
func DefaultConfig() Config {
	return Config{
		Duration:         3 * time.Second,
		Agents:           []int{1, 16},
		Contended:        []int{16, 64},
		Subscribers:      50,
		FanoutMessages:   2000,
		CheckpointAgents: 16,
		CheckpointRounds: 100,
		ListSizes:        []int{10_000, 100_000},
		KeepaliveAgents:  1000,
		KeepaliveClaims:  10,
		KeepaliveTTL:     30 * time.Second,
		Waiters:          1000,
	}
}

// SmallConfig is every scenario at tiny sizes: well under a minute in all.
func SmallConfig() Config {
	return Config{
		Duration:         200 * time.Millisecond,
		Agents:           []int{1, 4},
		Contended:        []int{4, 8},
		Subscribers:      5,
		FanoutMessages:   50,
		CheckpointAgents: 4,
		CheckpointRounds: 5,
		ListSizes:        []int{100, 500},
		KeepaliveAgents:  10,
		KeepaliveClaims:  10,
		KeepaliveTTL:     3 * time.Second,
		Waiters:          20,
	}
}

// withPreset returns cfg with the small preset applied when cfg.Small.
func (cfg Config) withPreset() Config {
	if !cfg.Small {
		return cfg
	}
	s := SmallConfig()
	s.NATSURL, s.JSON, s.Small, s.Run, s.HeapProfile, s.Progress = cfg.NATSURL, cfg.JSON, true, cfg.Run, cfg.HeapProfile, cfg.Progress
	return s
}

func (cfg Config) validate() error {
	if cfg.Run != "" {
		if _, err := regexp.Compile(cfg.Run); err != nil {
			return fmt.Errorf("bench: -run: %w", err)
		}
	}
	if cfg.Duration <= 0 {
		return fmt.Errorf("bench: duration %v must be positive", cfg.Duration)
	}
	if cfg.KeepaliveTTL < time.Second {
		return fmt.Errorf("bench: keepalive TTL %v (minimum 1s)", cfg.KeepaliveTTL)
	}
	for _, n := range [][]int{cfg.Agents, cfg.Contended, cfg.ListSizes} {
		for _, v := range n {
			if v < 1 {
				return fmt.Errorf("bench: size %d must be at least 1", v)
			}
		}
	}
	for name, v := range map[string]int{
		"subscribers": cfg.Subscribers, "fanout messages": cfg.FanoutMessages,
		"checkpoint agents": cfg.CheckpointAgents, "checkpoint rounds": cfg.CheckpointRounds,
		"keepalive agents": cfg.KeepaliveAgents, "keepalive claims": cfg.KeepaliveClaims, "waiters": cfg.Waiters,
	} {
		if v < 1 {
			return fmt.Errorf("bench: %s %d must be at least 1", name, v)
		}
	}
	return nil
}

// Flags registers the bench flags on fs and returns the Config they fill
// in; read it after fs.Parse. -small replaces every size flag.
func Flags(fs *flag.FlagSet) *Config {
	cfg := DefaultConfig()
	fs.StringVar(&cfg.NATSURL, "nats", "", "NATS URL of an external server (default: embedded server in this process)")
	fs.BoolVar(&cfg.JSON, "json", false, "print results as JSON")
	fs.BoolVar(&cfg.TCP, "tcp", false, "with the embedded server, connect over loopback TCP instead of in-process (as the sidecar's agents do)")
	fs.BoolVar(&cfg.Small, "small", false, "run every scenario at tiny sizes (smoke run, well under a minute; overrides the size flags)")
	fs.StringVar(&cfg.Run, "run", "", "run only scenarios whose name matches this regular expression")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measuring time per timed scenario and size (coord and floor each)")
	fs.Var((*intList)(&cfg.Agents), "agents", "comma-separated concurrency levels of the uncontended scenarios")
	fs.Var((*intList)(&cfg.Contended), "contended", "comma-separated numbers of agents contending for one path")
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "subscribers of the fan-out channel")
	fs.IntVar(&cfg.FanoutMessages, "fanout-messages", cfg.FanoutMessages, "messages published to the fan-out channel")
	fs.IntVar(&cfg.CheckpointAgents, "checkpoint-agents", cfg.CheckpointAgents, "agents meeting at each checkpoint")
	fs.IntVar(&cfg.CheckpointRounds, "checkpoint-rounds", cfg.CheckpointRounds, "checkpoint rounds")
	fs.Var((*intList)(&cfg.ListSizes), "list", "comma-separated numbers of claims held while listing")
	fs.IntVar(&cfg.KeepaliveAgents, "keepalive-agents", cfg.KeepaliveAgents, "agents in the keepalive scenario")
	fs.IntVar(&cfg.KeepaliveClaims, "keepalive-claims", cfg.KeepaliveClaims, "claims held by each keepalive agent")
	fs.DurationVar(&cfg.KeepaliveTTL, "keepalive-ttl", cfg.KeepaliveTTL, "TTL of the keepalive claims (renewed at a third)")
	fs.IntVar(&cfg.Waiters, "waiters", cfg.Waiters, "blocked agents, one per held path, released all at once")
	fs.StringVar(&cfg.HeapProfile, "keepalive-heapprofile", "", "write a heap profile at the end of the keepalive window to this file")
	return &cfg
}

// intList is a comma-separated list of integers as a flag.Value.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("not a number: %q", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}
