package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kavachos/kavach"
	"github.com/kavachos/kavach/users"
)

func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("user: want create, list, delete, ban or unban")
	}
	sub, rest := args[0], args[1:]
	var (
		email, name, id string
		passwordStdin   bool
		verified        bool
		limit, offset   int
		reason          string
		banFor          time.Duration
	)
	extra := func(fs *flag.FlagSet) {
		switch sub {
		case "create":
			fs.StringVar(&email, "email", "", "email address (required)")
			fs.StringVar(&name, "name", "", "display name")
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input (first line)")
			fs.BoolVar(&verified, "verified", false, "mark the email as verified")
		case "list":
			fs.IntVar(&limit, "limit", 100, "how many users")
			fs.IntVar(&offset, "offset", 0, "skip this many")
		case "delete", "ban", "unban":
			fs.StringVar(&email, "email", "", "email of the user to "+sub)
			fs.StringVar(&id, "id", "", "id of the user to "+sub)
			if sub == "ban" {
				fs.StringVar(&reason, "reason", "", "why (shown to the user when a sign-in is refused)")
				fs.DurationVar(&banFor, "for", 0, "how long (e.g. 72h); without it, until unbanned")
			}
		}
	}
	switch sub {
	case "create", "list", "delete", "ban", "unban":
	default:
		return fmt.Errorf("user: unknown subcommand %q (want create, list, delete, ban or unban)", sub)
	}
	k, err := openForCLI(ctx, "user "+sub, rest, stderr, getenv, extra)
	if err != nil {
		return err
	}
	defer k.Close()

	switch sub {
	case "create":
		if email == "" {
			return errors.New("user create: --email is required")
		}
		var password string
		if passwordStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read password: %w", err)
			}
			password = strings.TrimRight(line, "\r\n")
			if password == "" {
				return errors.New("user create: empty password on standard input")
			}
		}
		u, err := k.Users.CreateUser(ctx, usersCreateInput(email, name, password, verified))
		if err != nil {
			return describe(err)
		}
		_, err = fmt.Fprintf(stdout, "created user %s <%s>\n", u.ID, u.Email)
		return err
	case "list":
		us, err := k.Users.ListUsers(ctx, limit, offset)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tVERIFIED\tCREATED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", u.ID, u.Email, u.Name, u.EmailVerified, u.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	default: // delete, ban, unban
		if (email == "") == (id == "") {
			return fmt.Errorf("user %s: give exactly one of --email or --id", sub)
		}
		if id == "" {
			u, err := k.Users.FindUserByEmail(ctx, email)
			if err != nil {
				return describe(err)
			}
			id = u.ID
		}
		switch sub {
		case "ban":
			if banFor < 0 {
				return errors.New("user ban: --for must be positive")
			}
			if _, err := k.Users.BanUser(ctx, id, reason, banFor, "cli"); err != nil {
				return describe(err)
			}
			_, err := fmt.Fprintf(stdout, "banned user %s; their sessions are ended\n", id)
			return err
		case "unban":
			if err := k.Users.UnbanUser(ctx, id, "cli"); err != nil {
				return describe(err)
			}
			_, err := fmt.Fprintf(stdout, "unbanned user %s\n", id)
			return err
		}
		if err := k.Users.DeleteUser(ctx, id); err != nil {
			return describe(err)
		}
		_, err := fmt.Fprintf(stdout, "deleted user %s\n", id)
		return err
	}
}

// openForCLI loads settings plus a subcommand's own flags and opens Kavach.
func openForCLI(ctx context.Context, name string, args []string, stderr io.Writer, getenv func(string) string, extra func(*flag.FlagSet)) (*kavach.Kavach, error) {
	o, err := loadWith(name, args, stderr, getenv, extra)
	if err != nil {
		return nil, err
	}
	// Only the server delivers events: a short CLI run must leave them in
	// the outbox for it, not start delivering (and stop half way).
	o.cfg.WebhookURL, o.cfg.WebhookSecret = "", ""
	return kavach.New(ctx, o.cfg)
}

func usersCreateInput(email, name, password string, verified bool) users.CreateUserInput {
	return users.CreateUserInput{Email: email, Name: name, Password: password, EmailVerified: verified}
}

// describe turns domain errors into sentences for a terminal.
func describe(err error) error {
	var policy *users.PasswordPolicyError
	var input *users.InputError
	switch {
	case errors.As(err, &policy):
		return errors.New(policy.Message)
	case errors.As(err, &input):
		return errors.New(input.Message)
	}
	return err
}
