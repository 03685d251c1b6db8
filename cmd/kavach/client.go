package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kavachos/kavach/authz"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdClient(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("client: want create, list or delete")
	}
	sub, rest := args[0], args[1:]
	var (
		name, auth, scope, id, jwksFile string
		redirects, grants               stringList
		limit, offset                   int
	)
	extra := func(fs *flag.FlagSet) {
		switch sub {
		case "create":
			fs.StringVar(&name, "name", "", "client name shown on consent pages")
			fs.Var(&redirects, "redirect-uri", "redirect URI (repeatable; https, or http on a loopback host)")
			fs.Var(&grants, "grant", "grant type (repeatable): authorization_code, refresh_token, client_credentials")
			fs.StringVar(&auth, "auth", "", "token endpoint auth method: none, client_secret_basic (default), client_secret_post, private_key_jwt")
			fs.StringVar(&scope, "scope", "", "space-separated scopes the client may request (default: all)")
			fs.StringVar(&jwksFile, "jwks", "", "for private_key_jwt: inline JWK set (JSON) with the client's public keys")
		case "list":
			fs.IntVar(&limit, "limit", 100, "how many clients")
			fs.IntVar(&offset, "offset", 0, "skip this many")
		case "delete":
			fs.StringVar(&id, "id", "", "client id")
		}
	}
	switch sub {
	case "create", "list", "delete":
	default:
		return fmt.Errorf("client: unknown subcommand %q (want create, list or delete)", sub)
	}
	k, err := openForCLI(ctx, "client "+sub, rest, stderr, getenv, extra)
	if err != nil {
		return err
	}
	defer k.Close()
	switch sub {
	case "create":
		m := authz.ClientMetadata{ClientName: name, RedirectURIs: redirects, GrantTypes: grants, TokenEndpointAuthMethod: auth, Scope: scope}
		if jwksFile != "" {
			if !json.Valid([]byte(jwksFile)) {
				return errors.New("client create: --jwks must be a JSON JWK set")
			}
			m.JWKS = json.RawMessage(jwksFile)
		}
		reg, err := k.OAuth.RegisterClient(ctx, m)
		var me *authz.MetadataError
		if errors.As(err, &me) {
			return errors.New(me.Description)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client_id:     %s\n", reg.Client.GetID())
		if reg.Secret != "" {
			fmt.Fprintf(stdout, "client_secret: %s\n(shown once: store it now; Kavach keeps only its hash)\n", reg.Secret)
		}
		return nil
	case "list":
		cs, err := k.OAuth.Clients(ctx, limit, offset)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tSOURCE\tAUTH\tGRANTS\tCREATED")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.GetID(), c.Metadata.ClientName, c.Record.Source,
				c.Metadata.TokenEndpointAuthMethod, strings.Join(c.Metadata.GrantTypes, ","), c.Record.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		if id == "" {
			return errors.New("client delete: --id is required")
		}
		if err := k.OAuth.DeleteClient(ctx, id); err != nil {
			if errors.Is(err, authz.ErrClientNotFound) {
				return fmt.Errorf("client %s not found", id)
			}
			return err
		}
		_, err := fmt.Fprintf(stdout, "deleted client %s (its tokens and consents are gone)\n", id)
		return err
	}
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("keys: want rotate")
	}
	k, err := openForCLI(ctx, "keys rotate", args[1:], stderr, getenv, nil)
	if err != nil {
		return err
	}
	defer k.Close()
	// Old keys stay published until every token they signed has expired.
	publishFor := k.Config().OAuth.AccessTokenTTL + time.Hour
	if err := k.Keys.Rotate(ctx, publishFor); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "rotated signing keys; old keys stay published for %s\n", publishFor)
	return err
}
