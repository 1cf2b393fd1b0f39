// Command pyng runs the Pyng Receivables server and its operator commands.
//
//	pyng serve      run the server (migrations are applied on start)
//	pyng migrate    apply the database migrations and exit
//	pyng admin ...  create, list and show organisations, sites and API clients; revoke clients and
//	                give them new secrets; rotate keys
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/internal/redact"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// usage is the usage of every command; "pyng admin -h" prints adminUsage, and "pyng admin NOUN
// VERB -h" that command's line of it with its flags.
var usage = `usage:
  pyng serve [flags]                                   run the server
  pyng migrate [-database-url URL]                     apply database migrations, print them as JSON
` + adminUsage + becsUsage + `

Every command takes -database-url (env PYNG_DATABASE_URL); the admin commands also take the key
ring (-encryption-key or -encryption-key-file, env PYNG_ENCRYPTION_KEY or PYNG_ENCRYPTION_KEY_FILE).
The admin commands open an existing database only: "pyng serve" or "pyng migrate" creates one.
A list command prints one JSON object a line; every other command prints one JSON object.
"pyng serve -h" lists the server's flags.`

// adminOrder is the order of the admin commands in the usage.
var adminOrder = []string{
	"org create", "org list", "org show",
	"site create", "site list", "site show", "site update", "site set-rail",
	"client create", "client list", "client show", "client revoke", "client rotate-secret",
	"keys generate", "keys rotate", "signing-key rotate", "signing-key list", "bsb import",
}

// adminUsage is one line per admin command: its flags and what it does.
var adminUsage = usageLines("pyng admin ", adminOrder, func(name string) (string, string) {
	return adminCommands[name].synopsis, adminCommands[name].about
})

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// help is a request for a command's usage (-h): run prints text to stderr, as package flag
// does, and exits 0.
type help struct{ text string }

func (help) Error() string { return "help requested" }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	var h help
	switch {
	case err == nil:
		return 0
	case errors.As(err, &h):
		fmt.Fprintln(stderr, h.text)
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
		return serve(ctx, args[1:], stdout, stderr) // which logs the variables no setting's
	case "migrate":
		warnUnknownEnvironment(stderr)
		return migrate(ctx, args[1:], stdout)
	case "admin":
		warnUnknownEnvironment(stderr)
		if len(args) > 1 && args[1] == "becs" {
			return becsAdmin(ctx, args[2:], os.Stdin, stdout, stderr)
		}
		return admin(ctx, args[1:], stdout)
	}
	if isHelp(args[0]) {
		return flag.ErrHelp
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// warnUnknownEnvironment warns of the PYNG_ variables of the environment that are no setting, as
// the server's log does: a misspelt PYNG_DATABASE_URL leaves "pyng migrate" to migrate, and say
// it applied every migration to, a new SQLite file in the working directory rather than the
// database meant.
func warnUnknownEnvironment(stderr io.Writer) {
	if unknown := app.UnknownEnvironment(os.Environ()); len(unknown) > 0 {
		fmt.Fprintf(stderr, "pyng: warning: the environment sets PYNG_ variables that are no setting (misspelt?); they are ignored: %s\n",
			strings.Join(unknown, ","))
	}
}

// parse parses a command's flags, reporting mistakes as one usage error rather than the flag
// package's multi-line output; an argument is one of them.
func parse(fs *flag.FlagSet, args []string) error {
	_, err := parseWithArg(fs, args, false)
	return err
}

// parseWithArg parses a command's flags and, when it takesArg, its one argument, which may come
// before the flags, among them or after them ("--" ends the flags, for an argument that starts
// with a dash; "-" is an argument, standard input). It returns "" when no argument was given.
func parseWithArg(fs *flag.FlagSet, args []string, takesArg bool) (string, error) {
	fs.SetOutput(io.Discard)
	var arg string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return arg, nil
		}
		if !takesArg || arg != "" {
			return "", usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
		arg, args = fs.Arg(0), fs.Args()[1:]
	}
}

// commandHelp is the answer to "pyng admin ... NAME -h": the command, what it does and its flags.
func commandHelp(command, synopsis, about string, fs *flag.FlagSet) help {
	return help{fmt.Sprintf("usage: %s\n%s.\n%s", strings.TrimSpace(command+" "+synopsis), about, flagDefaults(fs))}
}

// usageLines is one line per command, in order: "pyng admin NAME SYNOPSIS", padded, and what it
// does.
func usageLines(prefix string, order []string, line func(name string) (synopsis, about string)) string {
	lines := make([]string, len(order))
	abouts := make([]string, len(order))
	width := 0
	for i, name := range order {
		synopsis, about := line(name)
		lines[i], abouts[i] = strings.TrimSpace(prefix+name+" "+synopsis), about
		width = max(width, len(lines[i]))
	}
	var b strings.Builder
	for i := range order {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, lines[i], abouts[i])
	}
	return b.String()
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

func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	values := app.RegisterFlags(fs, app.DatabaseSettings...)
	if err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return help{"usage: pyng migrate [-database-url URL]\n" +
				"Applies the pending migrations (the schema's, River's, and each rail's own tables'), creating\n" +
				"the database if it does not exist, and prints those it applied:\n" +
				`  {"applied":[{"component":"schema","version":1,"name":"00001_init.sql"},...]}` + "\n" +
				"The component is schema, river, or a rail's goose version table (sandbox_goose_version,\n" +
				"becs_goose_version).\n" +
				flagDefaults(fs)}
		}
		return err
	}
	db, _, err := openDatabase(ctx, values, false, false)
	if err != nil {
		return err
	}
	// Opening the database applied the engine's migrations; each rail migrates its own tables.
	if _, err := app.OpenRails(ctx, db, billing.SystemClock{}, 0); err != nil {
		return errors.Join(err, db.Close())
	}
	applied := []map[string]any{}
	for _, m := range db.Migrations() {
		applied = append(applied, map[string]any{"component": m.Component, "version": m.Version, "name": m.Name})
	}
	if err := db.Close(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"applied": applied})
}

// flagDefaults is what fs.PrintDefaults prints.
func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return strings.TrimRight(b.String(), "\n")
}

// openDatabase opens (and so migrates) the database the flags name, and returns the
// configuration the flags and the environment give. It opens the database with the key ring they
// give, or the sandbox's if it has one (see app.KeyringIfAny); with needKeys, a key ring is
// required. With mustExist, a database that does not exist (a SQLite file, a PostgreSQL schema
// without pyng's tables) is an error naming it, not a new, empty database (storage.MustExist).
func openDatabase(ctx context.Context, values map[string]*string, needKeys, mustExist bool) (storage.Database, app.Config, error) {
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
	opts := []storage.Option{storage.WithKeyring(keys)}
	if mustExist {
		opts = append(opts, storage.MustExist())
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, opts...)
	if errors.Is(err, storage.ErrNoDatabase) {
		err = fmt.Errorf("%v (-database-url or PYNG_DATABASE_URL %q): name an existing database, or create one with \"pyng migrate\" or \"pyng serve\"",
			err, redact.URL(cfg.DatabaseURL))
	}
	return db, cfg, err
}

// adminCommand is one "pyng admin NOUN VERB" command: its flags and what it does with them.
type adminCommand struct {
	synopsis, about string            // its flags and what it does, for the usage
	flags           []string          // required flags
	optional        map[string]string // optional flags, with their defaults
	bools           []string          // optional boolean flags
	// arg names the one argument the command takes after its noun and verb, if any (a file).
	arg string
	// keys: the command seals, so a key ring is required. noDatabase: it needs none.
	keys, noDatabase bool
	// run returns the one object the command prints; each, for a listing, calls emit with each
	// object it prints, one a line.
	run  func(ctx context.Context, a adminEnv, f map[string]string) (any, error)
	each func(ctx context.Context, a adminEnv, f map[string]string, emit func(any) error) error
}

// adminEnv is what an admin command works on: the service over the database, its rails, and the
// database.
// A command that needs no database gets neither.
type adminEnv struct {
	service *billing.Service
	rails   app.Rails
	db      storage.Database
}

var adminCommands = map[string]adminCommand{
	"org create": {synopsis: "--name NAME", about: "create an organisation", flags: []string{"name"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		o, err := a.service.CreateOrganisation(ctx, f["name"])
		return map[string]any{"organisationId": o.ID, "name": o.Name}, err
	}},
	"site create": {synopsis: "--org ORGID --name NAME", about: "create a site", flags: []string{"org", "name"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		site, err := a.service.CreateSite(ctx, f["org"], f["name"])
		return map[string]any{"siteId": site.ID, "organisationId": site.OrganisationID, "name": site.Name}, err
	}},
	"client create": {synopsis: `--org ORGID --scopes "SCOPE SCOPE"`, about: "create an API client; prints its secret once", flags: []string{"org", "scopes"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		scopes, unknown := billing.ParseScopes(f["scopes"])
		if len(unknown) > 0 {
			return nil, usageError{fmt.Sprintf("unknown scope %q; scopes are: %s", unknown[0], billing.FormatScopes(billing.AllScopes))}
		}
		c, secret, err := a.service.CreateClient(ctx, f["org"], scopes)
		return map[string]any{"clientId": c.ID, "clientSecret": secret, "organisationId": c.OrganisationID, "scopes": c.Scopes}, err
	}},
	"client revoke": {synopsis: "--client CLIENTID", about: "revoke an API client", flags: []string{"client"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		c, err := a.service.RevokeClient(ctx, f["client"])
		return map[string]any{"clientId": c.ID, "organisationId": c.OrganisationID, "revokedAt": billing.Millis(c.RevokedAt)}, err
	}},
	"keys generate": {synopsis: "[--id KEYID]", about: "print a new key ring entry", optional: map[string]string{"id": ""}, noDatabase: true, run: func(_ context.Context, _ adminEnv, f map[string]string) (any, error) {
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
	"keys rotate": {synopsis: "[--batch-size N]", about: "seal every value again with the current key", optional: map[string]string{"batch-size": "1000"}, keys: true, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		size, err := strconv.Atoi(f["batch-size"])
		if err != nil || size < 1 || size > 100_000 {
			return nil, usageError{fmt.Sprintf("--batch-size: %q is not a number from 1 to 100000", f["batch-size"])}
		}
		// A ring that cannot open the signing keys is not the servers': checked before a value is
		// sealed again with it (Reseal stops only at the first value it cannot open).
		if _, err := a.db.SigningKeys(ctx); err != nil {
			return nil, refuseUnopenedSigningKey(err)
		}
		resealed, err := app.Reseal(ctx, a.db, a.rails, size)
		return map[string]any{"keyId": a.db.Keyring().Current(), "resealed": resealed}, err
	}},
	"signing-key rotate": {synopsis: "[--retire-others]", about: "make a new current token signing key", bools: []string{"retire-others"}, keys: true, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		k := billing.SigningKey{ID: billing.NewID("key"), Secret: []byte(billing.RandomToken(32)), CreatedAt: time.Now()}
		retired, err := a.db.RotateSigningKey(ctx, k, f["retire-others"] == "true")
		if errors.Is(err, billing.ErrDuplicate) {
			return nil, errors.New("another signing key was added at the same moment; list the keys, and rotate again if need be")
		}
		if err != nil {
			return nil, refuseUnopenedSigningKey(err)
		}
		return map[string]any{"signingKeyId": k.ID, "retiredKeys": retired}, nil
	}},
	"signing-key list": {about: "list the token signing keys", keys: true, run: func(ctx context.Context, a adminEnv, _ map[string]string) (any, error) {
		keys, err := a.db.SigningKeys(ctx)
		list := make([]map[string]any, len(keys))
		for i, k := range keys {
			list[i] = map[string]any{"id": k.ID, "createdAt": billing.Millis(k.CreatedAt), "current": i == 0}
		}
		return map[string]any{"signingKeys": list}, err
	}},

	"bsb import": {synopsis: "FILE", about: "replace the BSB directory with APCA's file (the CSV APCA publishes)", arg: "file",
		run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
			file, err := os.Open(f["file"])
			if err != nil {
				return nil, usageError{err.Error()} // a file named wrong is a mistake, as for becs returns import
			}
			defer file.Close()
			n, err := a.service.ImportBranches(ctx, file)
			return map[string]any{"branches": n}, err
		}},

	"org list": {about: "list the organisations", each: func(ctx context.Context, a adminEnv, _ map[string]string, emit func(any) error) error {
		return emitAll(a.service.Organisations(ctx), organisationJSON, emit)
	}},
	"org show": {synopsis: "--org ORGID", about: "show an organisation", flags: []string{"org"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		o, err := a.service.Organisation(ctx, f["org"])
		return organisationJSON(o), err
	}},
	"site list": {synopsis: "[--org ORGID]", about: "list the sites, of one organisation or of all", optional: map[string]string{"org": ""},
		each: func(ctx context.Context, a adminEnv, f map[string]string, emit func(any) error) error {
			return emitAll(a.service.Sites(ctx, f["org"]), siteJSON, emit)
		}},
	"site show":     {synopsis: "--site SITEID", about: "show a site, with its BECS details once set-rail has set them", flags: []string{"site"}, run: showSite},
	"site set-rail": setRailCommand(),
	"site update": {synopsis: "--site SITEID [--legal-name NAME] [--abn ABN] [--phone PHONE] [--email EMAIL] [--address ADDRESS] [--time-zone TZ]",
		about: "set the site's debit user (the business that debits its customers, named in its Direct Debit Request service agreement) and time zone; a flag left out keeps its value",
		flags: []string{"site"}, optional: siteUpdateFlags(), run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
			var u billing.SiteUpdate
			for flag, field := range map[string]**string{"legal-name": &u.LegalName, "abn": &u.ABN, "phone": &u.Phone,
				"email": &u.Email, "address": &u.Address, "time-zone": &u.TimeZone} {
				if v, ok := f[flag]; ok && v != "" {
					*field = &v
				}
			}
			site, err := a.service.UpdateSite(ctx, f["site"], u)
			return siteJSON(site), err
		}},
	"client list": {synopsis: "[--org ORGID]", about: "list the API clients, of one organisation or of all (no secrets)", optional: map[string]string{"org": ""},
		each: func(ctx context.Context, a adminEnv, f map[string]string, emit func(any) error) error {
			return emitAll(a.service.Clients(ctx, f["org"]), clientJSON, emit)
		}},
	"client show": {synopsis: "--client CLIENTID", about: "show an API client (no secret)", flags: []string{"client"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
		c, err := a.service.ClientByID(ctx, f["client"])
		return clientJSON(c), err
	}},
	"client rotate-secret": {synopsis: "--client CLIENTID", about: "give a client a new secret, printed once; the old one stops working",
		flags: []string{"client"}, run: func(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
			c, secret, err := a.service.RotateClientSecret(ctx, f["client"])
			return map[string]any{"clientId": c.ID, "clientSecret": secret, "organisationId": c.OrganisationID, "scopes": c.Scopes}, err
		}},
}

// refuseUnopenedSigningKey is err, when it is a stored signing key the key ring could not open,
// as the refusal of a command that would seal with that ring: the ring is not the servers', and
// what it sealed they could not open (a current signing key among it, no server would start).
func refuseUnopenedSigningKey(err error) error {
	var unopened *storage.SigningKeyError
	if !errors.As(err, &unopened) {
		return err
	}
	return fmt.Errorf("refused, nothing was written: this key ring cannot open signing key %s (%v); "+
		"run the command with the servers' key ring (PYNG_ENCRYPTION_KEY or PYNG_ENCRYPTION_KEY_FILE), which holds the key that sealed it: "+
		"a value sealed with this ring could not be opened by the servers", unopened.KeyID, unopened.Err)
}

// emitAll emits each item of a listing as the object of asJSON, stopping at the first error.
func emitAll[T any](items iter.Seq2[T, error], asJSON func(T) map[string]any, emit func(any) error) error {
	for v, err := range items {
		if err != nil {
			return err
		}
		if err := emit(asJSON(v)); err != nil {
			return err
		}
	}
	return nil
}

// The objects the admin commands print of organisations, sites and clients; times are Unix
// milliseconds, as in the API. A client's is never its secret or the secret's hash.

func organisationJSON(o billing.Organisation) map[string]any {
	return map[string]any{"organisationId": o.ID, "name": o.Name, "createdAt": billing.Millis(o.CreatedAt)}
}

func siteJSON(s billing.Site) map[string]any {
	out := map[string]any{"siteId": s.ID, "organisationId": s.OrganisationID, "name": s.Name, "currency": s.Currency,
		"rail": s.Rail, "createdAt": billing.Millis(s.CreatedAt), "timeZone": s.TimeZone}
	if d := s.DebitUser; d != (billing.DebitUser{}) {
		out["debitUser"] = map[string]any{"legalName": d.Name, "abn": d.ABN, "phone": d.Phone, "email": d.Email, "address": d.Address}
	}
	return out
}

// siteUpdateFlags are the optional flags of "site update", empty when left out.
func siteUpdateFlags() map[string]string {
	return map[string]string{"legal-name": "", "abn": "", "phone": "", "email": "", "address": "", "time-zone": ""}
}

func clientJSON(c billing.Client) map[string]any {
	var revokedAt *int64
	if c.Revoked() {
		ms := billing.Millis(c.RevokedAt)
		revokedAt = &ms
	}
	return map[string]any{"clientId": c.ID, "organisationId": c.OrganisationID, "scopes": c.Scopes,
		"createdAt": billing.Millis(c.CreatedAt), "revokedAt": revokedAt}
}

// flagUsage is what each flag of the admin commands gives.
var flagUsage = map[string]string{
	"org":            "organisation id (org_...)",
	"site":           "site id (site_...)",
	"client":         "API client id (cli_...)",
	"name":           "name",
	"scopes":         "space-separated scopes: " + billing.FormatScopes(billing.AllScopes),
	"id":             "key id (default k and today's date, as k20260301)",
	"batch-size":     "rows sealed again per transaction, 1 to 100000",
	"retire-others":  "delete every other signing key: tokens they signed stop working",
	"rail":           "payment rail: sandbox or becs",
	"user-id":        "BECS: the APCA user ID the bank gave the debit user, 6 digits",
	"user-name":      "BECS: the debit user's name as the bank knows it, up to 26 characters",
	"bank":           "BECS: the debit user's bank, its 3-letter code (CBA, WBC...)",
	"description":    "BECS: the entries' description on statements, up to 12 characters",
	"trace-bsb":      "BECS: the BSB of the debit user's account returns go to (062-000)",
	"trace-account":  "BECS: the account number returns go to",
	"remitter":       "BECS: the remitter's name on the customers' statements, up to 16 characters",
	"self-balancing": "BECS: end each file with a credit to the trace account, as some banks require",
}

// flagOf is the flag of the admin commands that gives the field an error's target names.
func flagOf(target string) string {
	switch target {
	case "organisationId":
		return "org"
	case "clientId":
		return "client"
	case "siteId":
		return "site"
	}
	return target
}

func admin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) || len(args) > 1 && isHelp(args[1]) {
		return help{"usage:\n" + adminUsage + becsUsage + "\nRun \"pyng admin NOUN VERB -h\" for a command's flags."}
	}
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
		given[f] = fs.String(f, "", flagUsage[f]+" (required)")
	}
	for f, def := range cmd.optional {
		given[f] = fs.String(f, def, flagUsage[f])
	}
	flags := map[string]*bool{}
	for _, f := range cmd.bools {
		flags[f] = fs.Bool(f, false, flagUsage[f])
	}
	arg, err := parseWithArg(fs, args[2:], cmd.arg != "")
	if errors.Is(err, flag.ErrHelp) {
		return commandHelp("pyng admin "+name, cmd.synopsis, cmd.about, fs)
	}
	if err != nil {
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
	// An optional flag given with no value is a mistake (an unset shell variable), not the flag
	// left out: client list --org "$ORG" must not list every organisation's clients.
	var empty error
	fs.Visit(func(fl *flag.Flag) {
		if _, ok := cmd.optional[fl.Name]; ok && empty == nil && f[fl.Name] == "" {
			empty = usageError{fmt.Sprintf("--%s has no value: give one, or leave the flag out", fl.Name)}
		}
	})
	if empty != nil {
		return empty
	}
	if cmd.arg != "" {
		if arg == "" {
			return usageError{fmt.Sprintf("admin %s needs a %s: pyng admin %s %s", name, cmd.arg, name, cmd.synopsis)}
		}
		f[cmd.arg] = arg
	}
	var env adminEnv
	if !cmd.noDatabase {
		db, cfg, err := openDatabase(ctx, values, cmd.keys, true)
		if errors.Is(err, app.ErrNoKey) {
			return fmt.Errorf("admin %s needs the key ring, and nothing was changed: %w", name, err)
		}
		if err != nil {
			return err
		}
		defer db.Close()
		service, rails, err := app.NewService(ctx, db, billing.SystemClock{}, app.ServiceSettings{InvitationTTL: cfg.InvitationTTL, SettlementDelay: cfg.SettlementDelay, Sandbox: adminSandbox})
		if err != nil {
			return err
		}
		env = adminEnv{service: service, rails: rails, db: db}
	}
	var out any
	if cmd.each != nil {
		err = cmd.each(ctx, env, f, json.NewEncoder(stdout).Encode)
	} else {
		out, err = cmd.run(ctx, env, f)
	}
	if err := usageOf(err); err != nil || cmd.each != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(out)
}

// usageOf is err as the admin commands report it: a refusal of the service, each of its errors
// naming the flag at fault (exit 2).
func usageOf(err error) error {
	errs := billing.AsErrors(err)
	if errs == nil {
		return err
	}
	msgs := make([]string, len(errs))
	for i, be := range errs {
		msgs[i] = fmt.Sprintf("--%s: %s", flagOf(be.Target), be.Message)
	}
	return usageError{strings.Join(msgs, "\n")}
}

// isHelp reports whether arg asks for help: the word help, or a help flag.
func isHelp(arg string) bool { return arg == "help" || isHelpFlag(arg) }

// isHelpFlag reports whether arg is a help flag, which no argument of a command can be (a file
// may be named help).
func isHelpFlag(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }
