// Command pyng runs the Pyng Receivables server and its operator commands.
//
//	pyng serve      run the server (migrations are applied on start)
//	pyng migrate    apply the database migrations and exit
//	pyng admin ...  create organisations, sites and API clients; revoke clients
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
)

const usage = `usage:
  pyng serve [flags]                                   run the server
  pyng migrate [-database-url URL]                     apply database migrations and exit
  pyng admin org create --name NAME
  pyng admin site create --org ORGID --name NAME
  pyng admin client create --org ORGID --scopes "SCOPE SCOPE"
  pyng admin client revoke --client CLIENTID
Every command takes -database-url (env PYNG_DATABASE_URL); "pyng serve -h" lists the server's flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stderr, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pyng: %s (run \"pyng help\" for usage)\n", oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "pyng: %s\n", oneLine(err))
		return 1
	}
}

// oneLine keeps an error to the single line the operator's scripts expect.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"a command is required: serve, migrate or admin"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:])
	case "admin":
		return admin(ctx, args[1:], stdout)
	case "help", "-h", "-help", "--help":
		return flag.ErrHelp
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parse parses a command's flags, reporting mistakes as one usage error rather than the flag
// package's multi-line output.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	values := app.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return err
	}
	cfg, err := app.Load(values)
	if err != nil {
		return usageError{err.Error()}
	}
	logger := newLogger(cfg.LogFormat, stderr)
	server, err := app.New(ctx, cfg, logger, stdout)
	if err != nil {
		return err
	}
	return server.Run(ctx)
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func migrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	values := app.RegisterFlags(fs, app.DatabaseSettings...)
	if err := parse(fs, args); err != nil {
		return err
	}
	db, _, err := openDatabase(ctx, values)
	if err != nil {
		return err
	}
	// Opening the database applied the engine's migrations; each rail migrates its own tables.
	_, err = app.OpenRails(ctx, db, billing.SystemClock{}, 0)
	return errors.Join(err, db.Close())
}

// openDatabase opens (and so migrates) the database the flags name, and returns the
// configuration the flags and the environment give.
func openDatabase(ctx context.Context, values map[string]*string) (storage.Database, app.Config, error) {
	cfg, err := app.Load(values)
	if err != nil {
		return nil, app.Config{}, usageError{err.Error()}
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	return db, cfg, err
}

// adminCommand is one "pyng admin NOUN VERB" command: its flags and what it does with them.
type adminCommand struct {
	flags []string // required flags
	run   func(ctx context.Context, s *billing.Service, f map[string]string) (any, error)
}

var adminCommands = map[string]adminCommand{
	"org create": {[]string{"name"}, func(ctx context.Context, s *billing.Service, f map[string]string) (any, error) {
		o, err := s.CreateOrganisation(ctx, f["name"])
		return map[string]any{"organisationId": o.ID, "name": o.Name}, err
	}},
	"site create": {[]string{"org", "name"}, func(ctx context.Context, s *billing.Service, f map[string]string) (any, error) {
		site, err := s.CreateSite(ctx, f["org"], f["name"])
		return map[string]any{"siteId": site.ID, "organisationId": site.OrganisationID, "name": site.Name}, err
	}},
	"client create": {[]string{"org", "scopes"}, func(ctx context.Context, s *billing.Service, f map[string]string) (any, error) {
		scopes, unknown := billing.ParseScopes(f["scopes"])
		if len(unknown) > 0 {
			return nil, usageError{fmt.Sprintf("unknown scope %q; scopes are: %s", unknown[0], billing.FormatScopes(billing.AllScopes))}
		}
		c, secret, err := s.CreateClient(ctx, f["org"], scopes)
		return map[string]any{"clientId": c.ID, "clientSecret": secret, "organisationId": c.OrganisationID, "scopes": c.Scopes}, err
	}},
	"client revoke": {[]string{"client"}, func(ctx context.Context, s *billing.Service, f map[string]string) (any, error) {
		c, err := s.RevokeClient(ctx, f["client"])
		return map[string]any{"clientId": c.ID, "organisationId": c.OrganisationID, "revokedAt": billing.Millis(c.RevokedAt)}, err
	}},
}

// flagOf is the flag of the admin commands that gives the field an error's target names.
func flagOf(target string) string {
	switch target {
	case "organisationId":
		return "org"
	case "clientId":
		return "client"
	}
	return target
}

func admin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return usageError{"admin needs a noun and a verb, for example: admin org create --name NAME"}
	}
	name := args[0] + " " + args[1]
	cmd, ok := adminCommands[name]
	if !ok {
		return usageError{fmt.Sprintf("unknown admin command %q", name)}
	}
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	values := app.RegisterFlags(fs, app.DatabaseSettings...)
	given := map[string]*string{}
	for _, f := range cmd.flags {
		given[f] = fs.String(f, "", "")
	}
	if err := parse(fs, args[2:]); err != nil {
		return err
	}
	f := map[string]string{}
	for _, name := range cmd.flags {
		f[name] = strings.TrimSpace(*given[name])
		if f[name] == "" {
			return usageError{fmt.Sprintf("--%s is required", name)}
		}
	}
	db, cfg, err := openDatabase(ctx, values)
	if err != nil {
		return err
	}
	defer db.Close()
	service, err := app.NewService(ctx, db, billing.SystemClock{}, cfg.InvitationTTL, cfg.SettlementDelay)
	if err != nil {
		return err
	}
	out, err := cmd.run(ctx, service, f)
	var be *billing.Error
	if errors.As(err, &be) {
		return usageError{fmt.Sprintf("--%s: %s", flagOf(be.Target), be.Message)}
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(out)
}
