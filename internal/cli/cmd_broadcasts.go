package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

func runBroadcast(e *env, args []string) error {
	c := e.command("broadcast")
	if err := e.parse(c, args, 2, 2); err != nil {
		return err
	}
	channel, msg := c.pos[0], c.pos[1]
	if err := subjects.ValidateChannel(channel); err != nil {
		return usagef("%v", err)
	}
	if msg == "" {
		return usagef("broadcast: empty MESSAGE")
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	m, err := b.publish(e.ctx, channel, msg)
	if err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(m)
	}
	fmt.Fprintf(e.stdout, "broadcast #%d on %s\n", m.Seq, m.Channel)
	return nil
}

func runBroadcasts(e *env, args []string) error {
	c := e.command("broadcasts")
	var since durationFlag
	c.fs.Var(&since, "since", "only messages newer than this (default: all retained)")
	follow := c.fs.Bool("follow", false, "keep printing new messages until interrupted")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	channel := c.pos[0]
	if err := subjects.ValidateChannel(channel); err != nil {
		return usagef("%v", err)
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	if *follow {
		// One JSON object per line with --json (NDJSON), else one line each.
		enc := json.NewEncoder(e.stdout)
		return b.follow(e.ctx, channel, since.d, func(m coord.Broadcast) error {
			if e.g.json {
				return enc.Encode(m)
			}
			_, err := fmt.Fprintf(e.stdout, "%s  #%d  %s: %s\n", m.Timestamp.Local().Format(time.TimeOnly), m.Seq, m.Agent, m.Message)
			return err
		})
	}
	list, err := b.broadcasts(e.ctx, channel, since.d)
	if err != nil {
		return err
	}
	if list == nil {
		list = []coord.Broadcast{}
	}
	if e.g.json {
		return e.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no broadcasts on %s\n", channel)
		return nil
	}
	t := newTable(e.stdout, "SEQ", "TIME", "AGENT", "MESSAGE")
	for _, m := range list {
		t.row(m.Seq, m.Timestamp.Local().Format(time.DateTime), m.Agent, m.Message)
	}
	return t.flush()
}
