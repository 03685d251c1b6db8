// Command kavach runs the Kavach identity server and administers it.
//
//	kavach serve                 run the server (SQLite in ./kavach.db by default)
//	kavach migrate               apply database migrations and exit
//	kavach user create|list|delete
//	kavach client create|list|delete   OAuth clients
//	kavach keys rotate                 new signing keys; old ones stay published
//	kavach version
//
// Every setting comes from a flag or a KAVACH_* environment variable; run
// `kavach serve -h` or read docs/configuration.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	// Permission time windows name IANA zones; embed the zone database so
	// they load in minimal containers without /usr/share/zoneinfo.
	_ "time/tzdata"
)

const usage = `kavach — identity and authorization for humans and AI agents

Usage:
  kavach serve [flags]          run the server
  kavach migrate [flags]        apply database migrations and exit
  kavach user create --email E [--name N] [--password-stdin] [--verified]
  kavach user list [--limit N] [--offset N]
  kavach user delete (--email E | --id ID)
  kavach client create [--name N] [--redirect-uri U]... [--grant G]... [--auth M] [--scope S] [--jwks JSON]
  kavach client list | kavach client delete --id ID
  kavach agent create --owner EMAIL --name N [--type T] [--permissions JSON|@FILE] [--organization ID] [--expires-in D]
  kavach agent list --owner EMAIL | kavach agent show --id ID
  kavach agent grant --id ID --permissions JSON|@FILE
  kavach agent suspend|resume|revoke --id ID | kavach agent rotate --id ID [--overlap D]
  kavach agent delegate --parent ID --name N --permissions JSON|@FILE [--expires-in D]
  kavach trust recompute [--agent ID] [--write]   rebuild trust scores from the audit log
  kavach trust policy list|show|create|update|delete|history
                                                 manage trust policies (--id, --policy JSON|@FILE)
  kavach gateway --upstream URL --public-url URL --server-name N [--upstream-header "K: V"]...
                                                 Kavach in front of an MCP server (docs/protect-an-mcp-server.md)
  kavach keys rotate
  kavach audit verify           check the audit log's hash chain
  kavach version

Run "kavach serve -h" for every setting; each has a KAVACH_* environment variable.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr, getenv)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout, stderr, getenv)
	case "user":
		err = cmdUser(ctx, args[1:], stdin, stdout, stderr, getenv)
	case "client":
		err = cmdClient(ctx, args[1:], stdout, stderr, getenv)
	case "agent":
		err = cmdAgent(ctx, args[1:], stdout, stderr, getenv)
	case "trust":
		err = cmdTrust(ctx, args[1:], stdout, stderr, getenv)
	case "gateway":
		err = cmdGateway(ctx, args[1:], stdout, stderr, getenv)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr, getenv)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version", "-v":
		err = cmdVersion(stdout)
	case "config-table":
		// Prints the settings table of docs/configuration.md.
		_, err = fmt.Fprint(stdout, settingsMarkdown())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "kavach: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kavach: %v\n", err)
		return 1
	}
	return 0
}
