package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/storage"
)

var agentSubcommands = []string{"create", "list", "show", "grant", "suspend", "resume", "revoke", "rotate", "delegate"}

// cmdAgent manages agents from the operator's shell, as a server admin
// would through the API. Lifecycle changes are recorded in the audit log
// with principal "cli".
func cmdAgent(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	want := strings.Join(agentSubcommands, ", ")
	if len(args) == 0 {
		return fmt.Errorf("agent: want one of %s", want)
	}
	sub, rest := args[0], args[1:]
	var (
		owner, name, typ, perms, org, id string
		expires, overlap                 time.Duration
	)
	extra := func(fs *flag.FlagSet) {
		switch sub {
		case "create", "delegate":
			fs.StringVar(&name, "name", "", "agent name (required)")
			fs.StringVar(&perms, "permissions", "", `grants as JSON, e.g. '[{"resource":"mcp:github:*","actions":["read"]}]', or @FILE`)
			fs.DurationVar(&expires, "expires-in", 0, "the agent expires after this long (default: never, or with its parent)")
		case "grant":
			fs.StringVar(&perms, "permissions", "", "the agent's new grants as JSON, or @FILE (replaces all of them)")
		case "rotate":
			fs.DurationVar(&overlap, "overlap", 0, "how long the old keys keep working (at most 168h)")
		}
		switch sub {
		case "create":
			fs.StringVar(&owner, "owner", "", "email of the owning user (required)")
			fs.StringVar(&typ, "type", "", "autonomous (default), delegated or service")
			fs.StringVar(&org, "organization", "", "id of the organization the agent belongs to (the owner must be a member)")
		case "list":
			fs.StringVar(&owner, "owner", "", "email of the owning user (required)")
		case "show", "grant", "suspend", "resume", "revoke", "rotate":
			fs.StringVar(&id, "id", "", "agent id (required)")
		case "delegate":
			fs.StringVar(&id, "parent", "", "id of the agent that delegates (required)")
		}
	}
	known := false
	for _, s := range agentSubcommands {
		known = known || s == sub
	}
	if !known {
		return fmt.Errorf("agent: unknown subcommand %q (want %s)", sub, want)
	}
	k, err := openForCLI(ctx, "agent "+sub, rest, stderr, getenv, extra)
	if err != nil {
		return err
	}
	defer k.Close()
	ctx = agents.WithActor(ctx, "cli", "")
	if id == "" && sub != "create" && sub != "list" {
		if sub == "delegate" {
			return errors.New("agent delegate: --parent is required")
		}
		return fmt.Errorf("agent %s: --id is required", sub)
	}

	switch sub {
	case "create", "delegate":
		grants, err := parseGrants(perms)
		if err != nil {
			return fmt.Errorf("agent %s: --permissions: %w", sub, err)
		}
		var exp *time.Time
		if expires > 0 {
			t := time.Now().Add(expires)
			exp = &t
		}
		var (
			a   storage.Agent
			key string
		)
		if sub == "create" {
			if owner == "" {
				return errors.New("agent create: --owner is required")
			}
			u, err := k.Users.FindUserByEmail(ctx, owner)
			if err != nil {
				return describe(err)
			}
			a, grants, key, err = k.Agents.Create(ctx, agents.CreateInput{OwnerUserID: u.ID, Name: name, Type: typ,
				Permissions: grants, ExpiresAt: exp, OrganizationID: org})
			if err != nil {
				return describeAgent(err)
			}
		} else {
			a, grants, key, err = k.Agents.Delegate(ctx, id, agents.DelegateInput{Name: name, Permissions: grants, ExpiresAt: exp})
			if err != nil {
				return describeAgent(err)
			}
		}
		fmt.Fprintf(stdout, "agent:   %s (%s, %d grants)\n", a.ID, a.Name, len(grants))
		fmt.Fprintf(stdout, "api key: %s\n(shown once: store it now; Kavach keeps only its hash)\n", key)
		return nil
	case "list":
		if owner == "" {
			return errors.New("agent list: --owner is required")
		}
		u, err := k.Users.FindUserByEmail(ctx, owner)
		if err != nil {
			return describe(err)
		}
		list, err := k.Agents.List(ctx, u.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSTATUS\tPARENT\tCREATED")
		for _, a := range list {
			parent := "-"
			if a.ParentID != nil {
				parent = *a.ParentID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.Type, a.Status, parent, a.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		a, grants, err := k.Agents.Get(ctx, id)
		if err != nil {
			return describeAgent(err)
		}
		return printJSON(stdout, map[string]any{"agent": a, "permissions": grants})
	case "grant":
		grants, err := parseGrants(perms)
		if err != nil {
			return fmt.Errorf("agent grant: --permissions: %w", err)
		}
		a, grants, err := k.Agents.Update(ctx, id, agents.UpdateInput{Permissions: &grants})
		if err != nil {
			return describeAgent(err)
		}
		_, err = fmt.Fprintf(stdout, "agent %s now has %d grants\n", a.ID, len(grants))
		return err
	case "suspend", "resume":
		status := storage.AgentSuspended
		if sub == "resume" {
			status = storage.AgentActive
		}
		a, _, err := k.Agents.Update(ctx, id, agents.UpdateInput{Status: &status})
		if err != nil {
			return describeAgent(err)
		}
		_, err = fmt.Fprintf(stdout, "agent %s is %s\n", a.ID, a.Status)
		return err
	case "revoke":
		if err := k.Agents.Revoke(ctx, id); err != nil {
			return describeAgent(err)
		}
		_, err := fmt.Fprintf(stdout, "agent %s revoked, with its keys, tokens and sub-agents\n", id)
		return err
	default: // rotate
		key, err := k.Agents.Rotate(ctx, id, overlap)
		if err != nil {
			return describeAgent(err)
		}
		_, err = fmt.Fprintf(stdout, "api key: %s\n(shown once; the old keys stop after %s)\n", key, overlap)
		return err
	}
}

// parseGrants reads grants from JSON, or from a file with @FILE. Empty is
// no grants.
func parseGrants(v string) ([]agents.Grant, error) {
	if v == "" {
		return nil, nil
	}
	var out []agents.Grant
	if err := jsonArg(v, &out, "a JSON array of grants"); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonArg decodes a flag's value, JSON or "@file" naming a file of JSON,
// into dst, refusing unknown fields; what names the expected value in the
// error.
func jsonArg(v string, dst any, what string) error {
	raw := []byte(v)
	if strings.HasPrefix(v, "@") {
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return err
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("not %s: %w", what, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// describeAgent turns the agents service's errors into sentences.
func describeAgent(err error) error {
	var ve *agents.ValidationError
	switch {
	case errors.As(err, &ve):
		return fmt.Errorf("invalid %s", ve.Error())
	case errors.Is(err, agents.ErrAgentNotFound):
		return errors.New("no such agent")
	case errors.Is(err, agents.ErrQuotaExceeded):
		return errors.New("the owner has as many agents as allowed")
	case errors.Is(err, agents.ErrDelegationDepth):
		return errors.New("the delegation chain is as deep as this server allows (KAVACH_AGENTS_MAX_DELEGATION_DEPTH)")
	case errors.Is(err, agents.ErrAgentRevoked), errors.Is(err, agents.ErrAgentSuspended), errors.Is(err, agents.ErrAgentExpired):
		return fmt.Errorf("the agent (or one above it) may not act: %w", err)
	}
	return err
}
