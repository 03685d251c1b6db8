package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
)

// cmdTrust: kavach trust recompute [--agent ID] [--write] rebuilds agents'
// trust states from the audit log and compares them with the stored ones
// (which the server keeps incrementally). With --write, the rebuilt state
// replaces the stored one. It fails when a stored state differs and
// --write is not given. Run it with the servers stopped: a running one
// holds up to a second of events it has not stored yet (they show as a
// difference, and --write would count them twice when it stores them).
func cmdTrust(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	switch {
	case len(args) > 0 && args[0] == "recompute":
		return cmdTrustRecompute(ctx, args, stdout, stderr, getenv)
	case len(args) > 0 && args[0] == "policy":
		return cmdTrustPolicy(ctx, args[1:], stdout, stderr, getenv)
	}
	return errors.New("trust: want recompute or policy")
}

func cmdTrustRecompute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var (
		agentID string
		write   bool
	)
	k, err := openForCLI(ctx, "trust recompute", args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&agentID, "agent", "", "one agent's id (default: every agent)")
		fs.BoolVar(&write, "write", false, "store the rebuilt states")
	})
	if err != nil {
		return err
	}
	defer k.Close()
	if write && k.Config().Audit.Retention > 0 {
		// The log no longer holds the oldest events: a rebuilt state
		// would drop them.
		return errors.New("trust recompute: --write is refused while KAVACH_AUDIT_RETENTION deletes old audit records")
	}
	ids := []string{agentID}
	if agentID == "" {
		all, err := k.Store.Agents().List(ctx, 0, 0)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, a := range all {
			ids = append(ids, a.ID)
		}
	}
	if agentID != "" {
		if _, err := k.Store.Agents().Get(ctx, agentID); err != nil {
			return fmt.Errorf("trust recompute: agent %s: %w", agentID, err)
		}
	}
	m := k.Trust.Model()
	differ := 0
	for _, id := range ids {
		rebuilt, err := k.Trust.RecomputeFromAudit(ctx, id)
		if err != nil {
			return err
		}
		stored, err := k.Trust.State(ctx, id)
		if err != nil {
			return err
		}
		at := rebuilt.LastAt
		if stored.LastAt.After(at) {
			at = stored.LastAt
		}
		rs, ss := rebuilt.Score(at, m).Score, stored.Score(at, m).Score
		verdict := "agrees"
		if rebuilt.Events != stored.Events || rebuilt.Counts != stored.Counts || math.Abs(rs-ss) > 1e-6 {
			verdict = "differs"
			differ++
		}
		fmt.Fprintf(stdout, "%s\tevents %d (stored %d)\tscore %.4f (stored %.4f)\t%s\n", id, rebuilt.Events, stored.Events, rs, ss, verdict)
		if write {
			if err := k.Trust.Replace(ctx, id, rebuilt); err != nil {
				return err
			}
		}
	}
	if differ > 0 && !write {
		return fmt.Errorf("trust recompute: %d of %d agents differ from the audit log (run with --write to store the rebuilt states)", differ, len(ids))
	}
	return nil
}
