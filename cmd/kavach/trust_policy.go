package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kavachos/kavach/trust"
)

var trustPolicySubcommands = []string{"list", "show", "create", "update", "delete", "history"}

// cmdTrustPolicy manages trust policies from the operator's shell, as a
// server admin would through /api/auth/trust/policies. Changes are
// versioned and audited with principal "cli"; running servers apply them
// within a second.
func cmdTrustPolicy(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	want := strings.Join(trustPolicySubcommands, ", ")
	if len(args) == 0 {
		return fmt.Errorf("trust policy: want one of %s", want)
	}
	sub, rest := args[0], args[1:]
	known := false
	for _, s := range trustPolicySubcommands {
		known = known || s == sub
	}
	if !known {
		return fmt.Errorf("trust policy: unknown subcommand %q (want %s)", sub, want)
	}
	var policyID, body string
	k, err := openForCLI(ctx, "trust policy "+sub, rest, stderr, getenv, func(fs *flag.FlagSet) {
		if sub != "list" && sub != "create" {
			fs.StringVar(&policyID, "id", "", "policy id (required)")
		}
		if sub == "create" || sub == "update" {
			fs.StringVar(&body, "policy", "", `the policy as JSON, e.g. '{"name":"…","scope":{"type":"global"},"effect":"minimum_level","resources":["billing:*"],"level":"trusted"}', or @FILE`)
		}
	})
	if err != nil {
		return err
	}
	defer k.Close()
	if policyID == "" && sub != "list" && sub != "create" {
		return fmt.Errorf("trust policy %s: --id is required", sub)
	}
	p := k.Trust.Policies()
	cli := trust.Actor{Type: "cli", Platform: true}
	switch sub {
	case "list":
		list, err := p.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tVERSION\tENABLED\tSCOPE\tEFFECT\tWHAT\tNAME")
		for _, pol := range list {
			scope := pol.Scope.Type
			if pol.Scope.ID != "" {
				scope += ":" + pol.Scope.ID
			}
			fmt.Fprintf(tw, "%s\t%d\t%t\t%s\t%s\t%s\t%s\n", pol.ID, pol.Version, pol.Enabled, scope, pol.Effect, policyWhat(pol), pol.Name)
		}
		return tw.Flush()
	case "show":
		pol, err := p.Get(ctx, policyID)
		if err != nil {
			return err
		}
		return printJSON(stdout, pol)
	case "create", "update":
		in, err := parsePolicy(body)
		if err != nil {
			return fmt.Errorf("trust policy %s: --policy: %w", sub, err)
		}
		var pol trust.Policy
		if sub == "create" {
			pol, err = p.Create(ctx, cli, in)
		} else {
			pol, err = p.Update(ctx, cli, policyID, in)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, pol)
	case "delete":
		pol, err := p.Delete(ctx, cli, policyID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s (%s) at version %d; its history stays\n", pol.ID, pol.Name, pol.Version)
		return nil
	default: // history
		h, err := p.History(ctx, policyID)
		if err != nil {
			return err
		}
		return printJSON(stdout, h)
	}
}

// policyWhat sums up what a policy asks, for the list.
func policyWhat(p trust.Policy) string {
	switch p.Effect {
	case trust.EffectSuspend, trust.EffectAlert:
		return fmt.Sprintf("below %g", p.BelowScore)
	}
	on := append(append([]string(nil), p.Resources...), p.Scopes...)
	return fmt.Sprintf("%s on %s", p.Level, strings.Join(on, ","))
}

func parsePolicy(v string) (trust.PolicyInput, error) {
	var in trust.PolicyInput
	if v == "" {
		return in, errors.New("is required")
	}
	return in, jsonArg(v, &in, "a JSON policy")
}
