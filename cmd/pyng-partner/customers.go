package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pyng/receivables/client"
)

var customerCommands = []command{
	{name: "customers invite", args: "CUSTOMER_REFERENCE", nargs: 1,
		summary: "Invite a customer: prints the signup link to send them",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.Var(&o.metadata, "metadata", "KEY=VALUE of your own for the customer, such as accountId=8841 (repeatable; your identifiers, not the customer's contact details)")
		},
		run: inviteCustomer},
	{name: "customers list", summary: "List the site's customers and their links",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.state, "state", "", "only the links in this state: invited, linked, expired or revoked")
		},
		run: listCustomers},
	{name: "customers show", args: "CUSTOMER_REFERENCE", nargs: 1,
		summary: "Show a customer's link", run: showCustomer},
	{name: "customers revoke", args: "CUSTOMER_REFERENCE", nargs: 1,
		summary: "Revoke a customer's link: no debit of them is made after it", run: revokeCustomer},
}

func inviteCustomer(ctx context.Context, e *env, args []string) error {
	inv, err := e.site.Invite(ctx, client.InvitationRequest{CustomerReference: args[0], Metadata: e.opts.metadata})
	if err != nil {
		return err
	}
	return e.emit(inv, func(w io.Writer) {
		fmt.Fprintf(w, "Invited %s. Send them this signup link (valid until %s):\n%s\n", inv.CustomerReference, when(inv.ExpiresAt), inv.SignupURL)
	})
}

// metadataFlag gathers repeated --metadata KEY=VALUE flags.
type metadataFlag map[string]string

func (m *metadataFlag) String() string { return "" }

func (m *metadataFlag) Set(v string) error {
	key, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	if _, dup := (*m)[key]; dup {
		return fmt.Errorf("key %q is given twice", key)
	}
	if *m == nil {
		*m = metadataFlag{}
	}
	(*m)[key] = value
	return nil
}

var linkHeader = []any{"CUSTOMER", "STATE", "CREATED", "LINKED", "REVOKED", "EXPIRES"}

func linkRow(w io.Writer, l client.Link) {
	revoked := when(l.RevokedAt)
	if l.RevokedBy != "" {
		revoked += " by " + string(l.RevokedBy)
	}
	expires := "-" // a link once linked does not expire: its expiresAt is its invitation's
	if l.State == client.LinkInvited || l.State == client.LinkExpired {
		expires = when(l.ExpiresAt)
	}
	row(w, l.CustomerReference, l.State, when(l.CreatedAt), when(l.LinkedAt), revoked, expires)
}

func listCustomers(ctx context.Context, e *env, _ []string) error {
	var state client.LinkState
	switch s := client.LinkState(e.opts.state); s {
	case "", client.LinkInvited, client.LinkLinked, client.LinkExpired, client.LinkRevoked:
		state = s
	default:
		return usagef("--state %q is not one of invited, linked, expired, revoked", s)
	}
	return each(e, e.site.ListCustomers(ctx, client.ListCustomersOptions{State: state, Limit: 100}), linkHeader, linkRow)
}

func showCustomer(ctx context.Context, e *env, args []string) error {
	return showLink(e)(e.site.GetCustomer(ctx, args[0]))
}

func revokeCustomer(ctx context.Context, e *env, args []string) error {
	return showLink(e)(e.site.RevokeCustomer(ctx, args[0]))
}

// showLink writes the link a call answered with.
func showLink(e *env) func(*client.Link, error) error {
	return func(l *client.Link, err error) error {
		if err != nil {
			return err
		}
		return e.emit(l, func(w io.Writer) {
			row(w, linkHeader...)
			linkRow(w, *l)
			if l.SignupURL != "" {
				fmt.Fprintf(w, "\nSignup link: %s\n", l.SignupURL)
			}
		})
	}
}

// each writes the items of a list as they come: a JSON line each, or a table row each under
// header.
func each[T any](e *env, items func(yield func(T, error) bool), header []any, line func(io.Writer, T)) error {
	var tw interface {
		io.Writer
		Flush() error
	}
	if !e.json {
		tw = newTable(e.stdout)
		row(tw, header...)
	}
	for item, err := range items {
		if err != nil {
			if tw != nil {
				tw.Flush()
			}
			return err
		}
		if e.json {
			if err := writeJSON(e.stdout, item); err != nil {
				return err
			}
			continue
		}
		line(tw, item)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
