// Command pyng runs the Pyng Receivables server and its operator commands.
//
//	pyng serve      run the server (migrations are applied on start)
//	pyng migrate    apply the database migrations and exit
//	pyng admin ...  create organisations, sites and API clients; revoke clients; rotate keys
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

const usage = `usage:
  pyng serve [flags]                                   run the server
  pyng migrate [-database-url URL]                     apply database migrations and exit
  pyng admin org create --name NAME
  pyng admin site create --org ORGID --name NAME
  pyng admin client create --org ORGID --scopes "SCOPE SCOPE"
  pyng admin client revoke --client CLIENTID
  pyng admin keys generate [--id KEYID]                 print a new key ring entry
  pyng admin keys rotate [--batch-size N]               seal every value again with the current key
  pyng admin signing-key rotate [--retire-others]       make a new current token signing key
  pyng admin signing-key list
Every command takes -database-url (env PYNG_DATABASE_URL); the admin commands also take the key
ring (-encryption-key or -encryption-key-file, env PYNG_ENCRYPTION_KEY or PYNG_ENCRYPTION_KEY_FILE).
"pyng serve -h" lists the server's flags.`

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
		if len(args) > 1 && args[1] == "becs" {
			return becsAdmin(ctx, args[2:], stdout, stderr)
		}
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
	db, _, err := openDatabase(ctx, values, false)
	if err != nil {
		return err
	}
	// Opening the database applied the engine's migrations; each rail migrates its own tables.
	_, err = app.OpenRails(ctx, db, billing.SystemClock{}, 0)
	return errors.Join(err, db.Close())
}

// openDatabase opens (and so migrates) the database the flags name, and returns the
// configuration the flags and the environment give. It opens the database with the key ring they
// give, or the sandbox's if it has one (see app.KeyringIfAny); with needKeys, a key ring is
// required.
func openDatabase(ctx context.Context, values map[string]*string, needKeys bool) (storage.Database, app.Config, error) {
	cfg, err := app.Load(values)
	if err != nil {
		return nil, app.Config{}, usageError{err.Error()}
	}
	keys, err := app.KeyringIfAny(cfg)
	if err != nil {
		return nil, app.Config{}, err
	}
	if keys == nil && needKeys {
		return nil, app.Config{}, app.ErrNoKey
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, storage.WithKeyring(keys))
	return db, cfg, err
}

// adminCommand is one "pyng admin NOUN VERB" command: its flags and what it does with them.
type adminCommand struct {
	flags    []string          // required flags
	optional map[string]string // optional flags, with their defaults
	bools    []string          // optional boolean flags
	// keys: the command seals, so a key ring is required. noDatabase: it needs none.
	keys, noDatabase bool
	run              func(ctx context.Context, a adminEnv, f map[string]string) (any, error)
}

// adminEnv is what an admin command works on: the service over the database, and the database.
// A command that needs no database gets neither.
type adminEnv struct {
	service *billing.Service
	db      storage.Database
}

var adminCommands = map[string]adminCommand{
	"org create": {flags: []string{"name"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		o, err := a.service.CreateOrganisation(ctx, f["name"])
		return map[string]any{"organisationId": o.ID, "name": o.Name}, err
	}},
	"site create": {flags: []string{"org", "name"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		site, err := a.service.CreateSite(ctx, f["org"], f["name"])
		return map[string]any{"siteId": site.ID, "organisationId": site.OrganisationID, "name": site.Name}, err
	}},
	"client create": {flags: []string{"org", "scopes"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		scopes, unknown := billing.ParseScopes(f["scopes"])
		if len(unknown) > 0 {
			return nil, usageError{fmt.Sprintf("unknown scope %q; scopes are: %s", unknown[0], billing.FormatScopes(billing.AllScopes))}
		}
		c, secret, err := a.service.CreateClient(ctx, f["org"], scopes)
		return map[string]any{"clientId": c.ID, "clientSecret": secret, "organisationId": c.OrganisationID, "scopes": c.Scopes}, err
	}},
	"client revoke": {flags: []string{"client"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		c, err := a.service.RevokeClient(ctx, f["client"])
		return map[string]any{"clientId": c.ID, "organisationId": c.OrganisationID, "revokedAt": billing.Millis(c.RevokedAt)}, err
	}},
	"keys generate": {optional: map[string]string{"id": ""}, noDatabase: true, run: func(_ context.Context, _ adminEnv, f map[string]string) (any, error) {
		id := f["id"]
		if id == "" {
			id = "k" + time.Now().UTC().Format("20060102")
		}
		entry, err := seal.Generate(id)
		if err != nil {
			return nil, usageError{"--id: " + err.Error()}
		}
		return map[string]any{"keyId": id, "key": entry}, nil
	}},
	"keys rotate": {optional: map[string]string{"batch-size": "1000"}, keys: true, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		size, err := strconv.Atoi(f["batch-size"])
		if err != nil || size < 1 || size > 100_000 {
			return nil, usageError{fmt.Sprintf("--batch-size: %q is not a number from 1 to 100000", f["batch-size"])}
		}
		resealed, err := app.Reseal(ctx, a.db, size)
		return map[string]any{"keyId": a.db.Keyring().Current(), "resealed": resealed}, err
	}},
	"signing-key rotate": {bools: []string{"retire-others"}, keys: true, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		k := billing.SigningKey{ID: billing.NewID("key"), Secret: []byte(billing.RandomToken(32)), CreatedAt: time.Now()}
		retired, err := a.db.RotateSigningKey(ctx, k, f["retire-others"] == "true")
		if errors.Is(err, billing.ErrDuplicate) {
			return nil, errors.New("another signing key was added at the same moment; list the keys, and rotate again if need be")
		}
		return map[string]any{"signingKeyId": k.ID, "retiredKeys": retired}, err
	}},
	"signing-key list": {keys: true, run: func(ctx context.Context, a adminEnv, _ map[string]string) (any, error) {
		keys, err := a.db.SigningKeys(ctx)
		list := make([]map[string]any, len(keys))
		for i, k := range keys {
			list[i] = map[string]any{"id": k.ID, "createdAt": billing.Millis(k.CreatedAt), "current": i == 0}
		}
		return map[string]any{"signingKeys": list}, err
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
	values := app.RegisterFlags(fs, append(append([]string{}, app.DatabaseSettings...), app.KeySettings...)...)
	given := map[string]*string{}
	for _, f := range cmd.flags {
		given[f] = fs.String(f, "", "")
	}
	for f, def := range cmd.optional {
		given[f] = fs.String(f, def, "")
	}
	flags := map[string]*bool{}
	for _, f := range cmd.bools {
		flags[f] = fs.Bool(f, false, "")
	}
	if err := parse(fs, args[2:]); err != nil {
		return err
	}
	f := map[string]string{}
	for name, v := range given {
		f[name] = strings.TrimSpace(*v)
	}
	for name, v := range flags {
		f[name] = strconv.FormatBool(*v)
	}
	for _, name := range cmd.flags {
		if f[name] == "" {
			return usageError{fmt.Sprintf("--%s is required", name)}
		}
	}
	var env adminEnv
	if !cmd.noDatabase {
		db, cfg, err := openDatabase(ctx, values, cmd.keys)
		if err != nil {
			return err
		}
		defer db.Close()
		service, err := app.NewService(ctx, db, billing.SystemClock{}, cfg.InvitationTTL, cfg.SettlementDelay, cfg.Sandbox)
		if err != nil {
			return err
		}
		env = adminEnv{service: service, db: db}
	}
	out, err := cmd.run(ctx, env, f)
	var be *billing.Error
	if errors.As(err, &be) {
		return usageError{fmt.Sprintf("--%s: %s", flagOf(be.Target), be.Message)}
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(out)
}
