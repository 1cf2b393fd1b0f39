// Command pyng-partner is the partner's command line for the Pyng B2B Receivables API: it invites
// customers, submits batches from CSV files and follows them, tails the site's events and forwards
// them, signed, to a webhook receiver on the partner's own machine. It is a client of the API
// like any other (package client), configured by PYNG_URL, PYNG_CLIENT_ID, PYNG_CLIENT_SECRET and
// PYNG_SITE or the flags of the same names.
//
// It writes tables on a terminal, and JSON, one value a line, with --json or when its standard
// output is not a terminal. It exits 0 on success, 1 when the API or the input refused what was
// asked (the error's code and message on standard error), 2 on a usage error and 3 when batches
// submit --wait ends without the outcome of the batch it submitted (accepted, outcome unknown).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/pyng/receivables/client"
)

// The exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitOutcomeUnknown: the batch was accepted, and executes, but the wait for its outcome
	// ended without it (batches submit --wait). Not 1: a script that took it for a refusal and
	// submitted the rows again under another reference would debit every customer twice.
	exitOutcomeUnknown = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stdout)))
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// commands are the commands, in the order the overview lists them.
var commands = slices.Concat(customerCommands, batchCommands, eventCommands, webhookCommands, sandboxCommands)

// command is one command of the CLI, such as "customers invite".
type command struct {
	name    string
	args    string // the positional arguments, for the usage line
	nargs   int    // how many positional arguments it takes
	summary string
	help    string // more, after the usage line (optional)
	// flags adds the command's own flags; the global ones are added to every command.
	flags func(fs *flag.FlagSet, o *options)
	run   func(ctx context.Context, e *env, args []string) error
	// offline commands need no API client.
	offline bool
}

// options are the flags of every command and of some.
type options struct {
	url, clientID, clientSecret, site string
	json, verbose                     bool

	// Command flags, each used by the commands that declare it.
	state, rowState, reference, after, cursorFile, eventType, forwardTo, secret, endpointURL, events string
	cents, wait, csv, enable, disable                                                                bool
	limit                                                                                            int
	interval, maxInterval                                                                            durationFlag
	metadata                                                                                         metadataFlag
}

// env is what a command runs with.
type env struct {
	site           *client.Site
	stdout, stderr io.Writer
	json           bool
	opts           *options
	stderrTTY      bool
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run runs the command line args and returns the exit code. getenv reads the environment;
// terminal says whether stdout is a terminal.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, terminal bool) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		code := exitOK
		if len(args) == 0 {
			w, code = stderr, exitUsage
		}
		printOverview(w)
		return code
	}
	cmd, rest, err := findCommand(args)
	if err != nil {
		fmt.Fprintf(stderr, "pyng-partner: %v\n", err)
		return exitUsage
	}
	if cmd == nil { // a group named alone, or with -h
		if len(rest) > 0 && isHelp(rest[0]) {
			printGroup(stdout, args[0])
			return exitOK
		}
		printGroup(stderr, args[0])
		return exitUsage
	}
	o := &options{interval: durationFlag(defaultInterval), maxInterval: durationFlag(defaultMaxInterval)}
	fs := flag.NewFlagSet("pyng-partner "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The defaults from the environment are applied after parsing, so that -h never shows them.
	fs.StringVar(&o.url, "url", "", "the API's base URL (default $PYNG_URL)")
	fs.StringVar(&o.clientID, "client-id", "", "the API client's id (default $PYNG_CLIENT_ID)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "the API client's secret (default $PYNG_CLIENT_SECRET; prefer the variable: a flag shows in the process list)")
	fs.StringVar(&o.site, "site", "", "the siteId (default $PYNG_SITE)")
	fs.BoolVar(&o.json, "json", false, "write JSON, one value a line (the default when stdout is not a terminal; --json=false writes tables)")
	fs.BoolVar(&o.verbose, "verbose", false, "write each request to the API on stderr: method, path, status and traceId (quote the traceId to Pyng support)")
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	positional, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommand(stdout, cmd, fs)
		return exitOK
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]*string{"url": &o.url, "client-id": &o.clientID, "client-secret": &o.clientSecret, "site": &o.site} {
		if !set[name] {
			*v = getenv("PYNG_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		}
	}
	if !set["json"] {
		o.json = !terminal
	}
	if err == nil && len(positional) != cmd.nargs {
		switch {
		case len(positional) > cmd.nargs:
			err = usagef("unexpected argument %q", positional[cmd.nargs])
		default:
			err = usagef("%s needs %s", cmd.name, cmd.args)
		}
	}
	e := &env{stdout: stdout, stderr: stderr, json: o.json, opts: o}
	if f, ok := stderr.(*os.File); ok {
		e.stderrTTY = isTerminal(f)
	}
	if err == nil && !cmd.offline {
		e.site, err = connect(o, stderr)
	}
	if err == nil {
		err = cmd.run(ctx, e, positional)
	}
	return report(stderr, cmd, err)
}

// report writes err on stderr and gives the exit code.
func report(stderr io.Writer, cmd *command, err error) int {
	var usage usageError
	var apiErr *client.Error
	var input inputError
	var unknown outcomeUnknownError
	code := exitError
	if errors.As(err, &unknown) {
		code = exitOutcomeUnknown
	}
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "pyng-partner %s: %v\nRun 'pyng-partner %s -h' for its usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	case errors.As(err, &apiErr):
		writeAPIError(stderr, apiErr)
	case errors.As(err, &input):
		for _, line := range input.problems {
			fmt.Fprintln(stderr, line)
		}
		fmt.Fprintln(stderr, input.summary)
	default:
		fmt.Fprintf(stderr, "pyng-partner %s: %v\n", cmd.name, err)
	}
	return code
}

// writeAPIError writes an error answer: each problem's code, target and message, then the
// traceId to quote to Pyng.
func writeAPIError(w io.Writer, e *client.Error) {
	problems := e.Problems
	if len(problems) == 0 {
		problems = []client.Problem{{Code: e.Code, Target: e.Target, DisplayMessage: e.Message}}
	}
	for _, p := range problems {
		var b strings.Builder
		fmt.Fprintf(&b, "error %d", e.StatusCode)
		if p.Code != "" {
			fmt.Fprintf(&b, " %s", p.Code)
		}
		if p.Target != "" {
			fmt.Fprintf(&b, " (%s)", p.Target)
		}
		fmt.Fprintf(&b, ": %s", p.DisplayMessage)
		fmt.Fprintln(w, b.String())
	}
	if e.TraceID != "" {
		fmt.Fprintf(w, "traceId %s\n", e.TraceID)
	}
}

// connect makes the client of the site the options name.
func connect(o *options, stderr io.Writer) (*client.Site, error) {
	var missing []string
	for _, req := range []struct{ value, name string }{
		{o.url, "--url (PYNG_URL)"}, {o.clientID, "--client-id (PYNG_CLIENT_ID)"},
		{o.clientSecret, "--client-secret (PYNG_CLIENT_SECRET)"}, {o.site, "--site (PYNG_SITE)"},
	} {
		if req.value == "" {
			missing = append(missing, req.name)
		}
	}
	if len(missing) > 0 {
		return nil, usagef("missing %s", strings.Join(missing, ", "))
	}
	cfg := client.Config{BaseURL: o.url, ClientID: o.clientID, ClientSecret: o.clientSecret}
	if o.verbose {
		cfg.HTTPClient = &http.Client{Transport: verboseTransport{next: http.DefaultTransport, w: stderr}}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return c.Site(o.site), nil
}

// verboseTransport writes a line on w for each request it sends (--verbose): the token requests
// too, whose traceId Pyng support can find as well.
type verboseTransport struct {
	next http.RoundTripper
	w    io.Writer
}

func (t verboseTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	path := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if err != nil {
		fmt.Fprintf(t.w, "%s %s: %v\n", r.Method, path, err)
		return nil, err
	}
	fmt.Fprintf(t.w, "%s %s: %s traceId %s\n", r.Method, path, resp.Status, orDash(resp.Header.Get("Pyng-Trace-Id")))
	return resp, nil
}

// parseInterleaved parses flags wherever they stand among the positional arguments ("--" ends the
// flags), and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			if strings.HasPrefix(err.Error(), "flag provided but not defined") {
				// A reference may start with a hyphen (-A1), which reads as a flag.
				return nil, usageError{err.Error() + " (an argument that starts with - goes after --, which ends the flags: show --csv -- -A1)"}
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		// fs.Parse stops at the first positional argument, or after a "--" it consumed.
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func isHelp(arg string) bool {
	return slices.Contains([]string{"-h", "-help", "--help", "help"}, arg)
}

// findCommand finds the command args name, and returns it with the arguments that follow its
// name. A group named alone (or with -h) gives a nil command.
func findCommand(args []string) (*command, []string, error) {
	group := args[0]
	var inGroup []*command
	for i := range commands {
		c := &commands[i]
		g, verb, _ := strings.Cut(c.name, " ")
		if g != group {
			continue
		}
		inGroup = append(inGroup, c)
		if verb == "" {
			return c, args[1:], nil
		}
		if len(args) > 1 && args[1] == verb {
			return c, args[2:], nil
		}
	}
	switch {
	case len(inGroup) == 0:
		return nil, nil, fmt.Errorf("unknown command %q; run 'pyng-partner -h' for the commands", group)
	case len(args) == 1 || isHelp(args[1]):
		return nil, args[1:], nil
	default:
		return nil, nil, fmt.Errorf("unknown command %q; run 'pyng-partner %s -h' for its commands", group+" "+args[1], group)
	}
}

const overview = `pyng-partner is the partner's command line for the Pyng B2B Receivables API.

Usage:
  pyng-partner <command> [flags] [arguments]

Every command reads its configuration from the environment, or from the flags of the same name:
  PYNG_URL            the API's base URL (--url)
  PYNG_CLIENT_ID      the API client's id (--client-id)
  PYNG_CLIENT_SECRET  the API client's secret (--client-secret)
  PYNG_SITE           the siteId (--site)

It writes tables on a terminal and JSON, one value a line, with --json or when its output is not a
terminal (--json=false writes tables). Exit codes: 0 success, 1 the API or the input refused what
was asked (the error on stderr), 2 a usage error, 3 batches submit --wait ended without the
outcome of the batch it submitted (accepted, outcome unknown: read it with batches show).

Commands:
`

func printOverview(w io.Writer) {
	fmt.Fprint(w, overview)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pyng-partner <command> -h' for a command's flags.")
}

func printGroup(w io.Writer, group string) {
	fmt.Fprintf(w, "Commands of pyng-partner %s:\n", group)
	for _, c := range commands {
		if g, _, _ := strings.Cut(c.name, " "); g == group {
			fmt.Fprintf(w, "  %-28s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'pyng-partner %s <command> -h' for a command's flags.\n", group)
}

func printCommand(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: pyng-partner %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}
