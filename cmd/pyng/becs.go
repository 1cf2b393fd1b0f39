package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// becsOrder is the order of the becs commands in the usage; becsCommands says what follows each
// one's name, what it does, and what its one argument is, if it takes one.
var becsOrder = []string{"files list", "files get", "files lodged", "returns import", "returns unmatched"}

var becsCommands = map[string]struct{ synopsis, about, arg string }{
	"files list":        {"--site SITEID", "one JSON line a file", ""},
	"files get":         {"FILEID", "the file's exact bytes (customers' bank details, in plaintext)", "a file id"},
	"files lodged":      {"FILEID", "record that the file was lodged with the bank", "a file id"},
	"returns import":    {"FILE", "import the bank's returns file (- for stdin)", "the returns file's path"},
	"returns unmatched": {"", "one JSON line an item kept that matched no row", ""},
}

// becsUsage is the usage of the BECS rail's commands, set-rail's with them.
var becsUsage = `BECS rail:
  pyng admin site set-rail --site SITEID --rail becs --user-id 123456 --user-name NAME --bank CBA
      --description DESC --trace-bsb 062-000 --trace-account ACCOUNT --remitter NAME [--self-balancing]
  pyng admin site set-rail --site SITEID --rail sandbox
` + usageLines("pyng admin becs ", becsOrder, func(name string) (string, string) {
	return becsCommands[name].synopsis, becsCommands[name].about
})

// The debit user's flags of "site set-rail", each the field of aba.DebitUser it sets.
var debitUserFlags = []string{"user-id", "user-name", "bank", "description", "trace-bsb", "trace-account", "remitter"}

// flagOfField is the flag of "site set-rail" that gives the field of a direct-entry record an
// aba.FieldError names, in the file of one debit that SetUser checks the debit user with: the
// descriptive record's fields, each detail record's trace and remitter, and, self-balancing, the
// credit to the trace account (its BSB and account number the trace's, its title the user name,
// its lodgement reference the description). The debit's own fields are valid.
var flagOfField = map[string]string{
	"financial institution": "bank",
	"user name":             "user-name",
	"user ID":               "user-id",
	"description":           "description",
	"trace BSB":             "trace-bsb",
	"trace account number":  "trace-account",
	"name of remitter":      "remitter",
	"BSB":                   "trace-bsb",
	"account number":        "trace-account",
	"title of account":      "user-name",
	"lodgement reference":   "description",
}

// debitUserError is the usage error of the problems SetUser found, each named by the flag at
// fault, once.
func debitUserError(errs aba.Errors) error {
	var msgs []string
	for _, e := range errs {
		msg := fmt.Sprintf("--%s: %s", flagOfField[e.Field], e.Problem)
		if flagOfField[e.Field] == "" {
			msg = "the debit user's details: " + e.Error() // none expected: the sample debit is valid
		}
		if !slices.Contains(msgs, msg) {
			msgs = append(msgs, msg)
		}
	}
	return usageError{strings.Join(msgs, "\n")}
}

// setRailCommand is "site set-rail".
func setRailCommand() adminCommand {
	optional := map[string]string{}
	for _, f := range debitUserFlags {
		optional[f] = ""
	}
	// keys: it has the rail withdraw the debits of customers whose sealed details it opens, which
	// without a key ring would fail once the new details are written.
	return adminCommand{
		synopsis: "--site SITEID --rail sandbox|becs [the debit user's flags]",
		about:    "put the site on a rail; for becs, with its debit user's details, each checked (its earlier batches stay on their rail)",
		flags:    []string{"site", "rail"}, optional: optional, bools: []string{"self-balancing"}, keys: true, run: setRail}
}

// setRail puts a site on a rail; for the BECS rail, with its debit user, every field checked
// before anything is written.
func setRail(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
	out := map[string]any{"siteId": f["site"], "rail": f["rail"]}
	if f["rail"] != rail.BECS {
		var given []string
		for _, name := range debitUserFlags {
			if f[name] != "" {
				given = append(given, "--"+name)
			}
		}
		if f["self-balancing"] == "true" {
			given = append(given, "--self-balancing")
		}
		if len(given) > 0 {
			return nil, usageError{fmt.Sprintf("%s: the debit user's details are for --rail becs only, not %q", strings.Join(given, ", "), f["rail"])}
		}
	}
	if f["rail"] == rail.BECS {
		var missing []string
		for _, name := range debitUserFlags {
			if f[name] == "" {
				missing = append(missing, "--"+name)
			}
		}
		if len(missing) > 0 {
			return nil, usageError{fmt.Sprintf("the BECS rail needs the debit user's details: %s", strings.Join(missing, ", "))}
		}
		site, err := a.db.GetSite(ctx, f["site"])
		if errors.Is(err, billing.ErrNotFound) {
			return nil, usageError{"--site: No site with this id exists."}
		}
		if err != nil {
			return nil, err
		}
		if err := site.CanCollect(); err != nil {
			return nil, usageOf(err) // before the rail's details are written, as SetSiteRail would refuse
		}
		traceBSB, err := aba.ParseBSB(f["trace-bsb"])
		if err != nil {
			return nil, usageError{"--trace-bsb: " + err.Error()}
		}
		u, err := a.rails.BECS.SetUser(ctx, f["site"], aba.DebitUser{UserID: f["user-id"], UserName: f["user-name"], Institution: f["bank"],
			Description: f["description"], TraceBSB: traceBSB, TraceAccount: f["trace-account"], Remitter: f["remitter"],
			SelfBalancing: f["self-balancing"] == "true"})
		var fields aba.Errors
		if errors.As(err, &fields) {
			return nil, debitUserError(fields)
		}
		if err != nil {
			return nil, err
		}
		out["becs"] = becsUserJSON(u)
		again, err := a.service.StopDebitsNotAuthorised(ctx, site, u.UserID)
		if err != nil {
			return nil, fmt.Errorf("the BECS details are set; stopping the debits of the customers whose Direct Debit Request "+
				"does not name the user ID failed (run set-rail again): %w", err)
		}
		out["customersToSignUpAgain"] = again
	}
	site, err := a.service.SetSiteRail(ctx, f["site"], f["rail"])
	if err != nil {
		return nil, err
	}
	out["rail"] = site.Rail
	return out, nil
}

// becsUserJSON is the site's details as a BECS debit user, as set-rail and site show print them
// (not the "debitUser" of site show: the business its service agreement names).
func becsUserJSON(u aba.DebitUser) map[string]any {
	return map[string]any{"userId": u.UserID, "userName": u.UserName, "bank": u.Institution, "description": u.Description,
		"traceBsb": u.TraceBSB, "traceAccount": u.TraceAccount, "remitter": u.Remitter, "selfBalancing": u.SelfBalancing}
}

// showSite is site show: the site, with its BECS details once set-rail has set them (kept when
// the site goes back to the sandbox, for its next move to the BECS rail).
func showSite(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
	site, err := a.service.SiteByID(ctx, f["site"])
	if err != nil {
		return nil, err
	}
	out := siteJSON(site)
	switch u, err := a.rails.BECS.User(ctx, site.ID); {
	case err == nil:
		out["becs"] = becsUserJSON(u)
	case !errors.Is(err, becs.ErrNotFound):
		return nil, err
	}
	return out, nil
}

// isSiteFlag reports whether arg is the flag --site, in any of the forms package flag takes.
func isSiteFlag(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return strings.HasPrefix(arg, "-") && name == "site"
}

// becsAdmin runs "pyng admin becs NOUN VERB [ID] [flags]".
// adminSandbox is the sandbox setting of the service the admin commands use: none takes a batch
// or a webhook URL, which is all it decides, and the commands read no -sandbox flag (the setting's
// default is true), so none is taken to be a sandbox.
const adminSandbox = false

func becsAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) || len(args) > 1 && isHelp(args[1]) {
		return help{becsUsage}
	}
	if len(args) < 2 {
		return usageError{"admin becs needs a noun and a verb, for example: admin becs files list --site SITEID"}
	}
	name := args[0] + " " + args[1]
	cmd, ok := becsCommands[name]
	if !ok {
		return usageError{fmt.Sprintf("unknown admin command \"becs %s\"", name)}
	}
	args = args[2:]
	fs := flag.NewFlagSet("admin becs "+name, flag.ContinueOnError)
	values := app.RegisterFlags(fs, append(append([]string{}, app.DatabaseSettings...), app.KeySettings...)...)
	var site *string
	if name == "files list" {
		site = fs.String("site", "", "the site whose files to list (required)")
	} else if slices.ContainsFunc(args, isSiteFlag) {
		return usageError{fmt.Sprintf("--site is for files list only: admin becs %s names its file, whatever its site", name)}
	}
	id, err := parseWithArg(fs, args, cmd.arg != "")
	switch {
	case errors.Is(err, flag.ErrHelp):
		return commandHelp("pyng admin becs "+name, cmd.synopsis, cmd.about, fs)
	case err != nil:
		return err
	case cmd.arg != "" && id == "":
		return usageError{fmt.Sprintf("admin becs %s needs %s", name, cmd.arg)}
	case site != nil && *site == "":
		return usageError{"--site is required"}
	}
	db, cfg, err := openDatabase(ctx, values, true, true)
	if err != nil {
		return err
	}
	defer db.Close()
	service, rails, err := app.NewService(ctx, db, billing.SystemClock{}, app.ServiceSettings{InvitationTTL: cfg.InvitationTTL, SettlementDelay: cfg.SettlementDelay, Sandbox: adminSandbox})
	if err != nil {
		return err
	}
	r := rails.BECS
	if strings.HasPrefix(name, "returns ") {
		return becsReturns(ctx, name, id, r, service, stdin, stdout, stderr)
	}
	if site != nil { // a site of no files, or no site: the second is a mistake
		if _, err := service.SiteByID(ctx, *site); err != nil {
			return usageOf(err)
		}
	}
	err = becsFiles(ctx, name, id, site, r, service, stdout, stderr)
	if errors.Is(err, becs.ErrNotFound) {
		return usageError{fmt.Sprintf("no BECS file %q", id)}
	}
	return err
}

func becsFiles(ctx context.Context, name, id string, site *string, r *becs.Rail, service *billing.Service, stdout, stderr io.Writer) error {
	enc := json.NewEncoder(stdout)
	now := billing.SystemClock{}.Now()
	switch name {
	case "files list":
		files, err := r.Files(ctx, *site)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := enc.Encode(fileJSON(f, now)); err != nil {
				return err
			}
		}
		return nil
	case "files get":
		content, err := r.Content(ctx, id)
		if err != nil {
			return err
		}
		f, err := r.File(ctx, id)
		if err != nil {
			return err
		}
		switch f.State(now) {
		case becs.FileExpired:
			fmt.Fprintf(stderr, "warning: file %s is expired: it was not lodged by its lodge-by time %s and its rows fail expired; do not lodge it with the bank\n",
				f.ID, f.LodgeBy().Format(time.RFC3339))
		case becs.FileLodged:
			fmt.Fprintf(stderr, "warning: file %s was lodged at %s: the bank has it; do not upload it again, or its debits are collected twice\n",
				f.ID, f.LodgedAt.Format(time.RFC3339))
		}
		_, err = stdout.Write(content)
		return err
	}
	before, err := r.File(ctx, id)
	if err != nil {
		return err
	}
	if !before.LodgedAt.IsZero() {
		// Recording it again changes nothing; saying so may stop a second upload to the bank.
		fmt.Fprintf(stderr, "warning: file %s was recorded lodged already, at %s: nothing changed; do not upload it to the bank again\n",
			id, before.LodgedAt.Format(time.RFC3339))
	}
	f, err := r.Lodge(ctx, id)
	if errors.Is(err, becs.ErrTooLate) || errors.Is(err, becs.ErrLodgedMeanwhile) || errors.Is(err, becs.ErrBeingPublished) {
		return fmt.Errorf("refused: %w", err)
	}
	if err != nil {
		return err
	}
	// Record the debits succeeded now, not at their batches' next step, so that no row can fail
	// expired between the lodging and its record.
	keys, err := r.Keys(ctx, id)
	if err != nil {
		return err
	}
	if _, err := service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
		return fmt.Errorf("the file is lodged; recording its rows succeeded failed (their batches record it at their next step): %w", err)
	}
	// A returns file imported before this record kept its items of these rows unmatched.
	kept, err := app.MatchKeptBECSReturns(ctx, r, service, billing.SystemClock{})
	if err != nil {
		return fmt.Errorf("the file is lodged and its rows succeeded; matching the returned items kept unmatched failed (the server's becs_rematch_returns task does it within a minute): %w", err)
	}
	if matched := kept.Returned + kept.AlreadyReturned; matched > 0 {
		fmt.Fprintf(stderr, "%d returned items kept unmatched (returns imported before this record) match their rows now: their returns are recorded, and they are no longer kept\n", matched)
	}
	if kept.Revoked > 0 {
		fmt.Fprintf(stderr, "customers revoked by the bank, as a return of theirs ended their authority: %d\n", kept.Revoked)
	}
	return enc.Encode(fileJSON(f, now))
}

// fileJSON is a file as the commands show it; times are Unix milliseconds, as in the API.
func fileJSON(f becs.File, now time.Time) map[string]any {
	out := map[string]any{"id": f.ID, "siteId": f.SiteID, "cutAt": billing.Millis(f.CutAt), "rows": f.Rows, "total": f.Total,
		"checksum": "sha256:" + f.Checksum, "state": f.State(now), "lodgeBy": billing.Millis(f.LodgeBy())}
	if !f.DeliveredAt.IsZero() {
		out["deliveredAt"] = billing.Millis(f.DeliveredAt)
	}
	if !f.LodgedAt.IsZero() {
		out["lodgedAt"] = billing.Millis(f.LodgedAt)
	}
	return out
}

// maxReturnsFile bounds a returns file read: 200,000 items of 122 bytes.
const maxReturnsFile = 200_000 * 122

// becsReturns imports a returns file, or lists the items kept that matched no row.
func becsReturns(ctx context.Context, name, path string, r *becs.Rail, service *billing.Service, stdin io.Reader, stdout, stderr io.Writer) error {
	enc := json.NewEncoder(stdout)
	if name == "returns unmatched" {
		kept, err := r.Unmatched(ctx)
		if err != nil {
			return err
		}
		for _, u := range kept {
			if err := enc.Encode(map[string]any{"source": "sha256:" + u.Source, "line": u.Line, "lodgementReference": u.LodgementReference,
				"amount": u.Amount, "reasonCode": int(u.Reason), "reason": u.Reason.Name(), "problem": u.Problem,
				"importedAt": billing.Millis(u.ImportedAt)}); err != nil {
				return err
			}
		}
		return nil
	}
	in := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return usageError{err.Error()}
		}
		defer f.Close()
		in = f
	}
	content, err := io.ReadAll(io.LimitReader(in, maxReturnsFile+1))
	if err != nil {
		return err
	}
	if len(content) > maxReturnsFile {
		return fmt.Errorf("the returns file is larger than %d bytes; nothing was imported", maxReturnsFile)
	}
	report, err := app.ImportBECSReturns(ctx, r, service, billing.SystemClock{}, content)
	var fields aba.Errors
	if errors.As(err, &fields) {
		for _, e := range fields {
			fmt.Fprintf(stderr, "%s: %s\n", path, e)
		}
		problems := "problems"
		if len(fields) == 1 {
			problems = "problem"
		}
		return fmt.Errorf("%s is not a valid returns file (%d %s above); nothing was imported", path, len(fields), problems)
	}
	if errors.Is(err, becs.ErrNotReturns) {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	if err != nil {
		return err
	}
	for _, it := range report.Unmatched {
		fmt.Fprintf(stderr, "%s: line %d: lodgement reference %q, %d cents, %s: %s; kept (pyng admin becs returns unmatched)\n",
			path, it.Line, it.Return.LodgementReference, it.Return.Amount, it.Return.Reason.Name(), it.Problem)
	}
	// A struct, not a map, so that the members come in the README's order.
	return enc.Encode(struct {
		Source          string `json:"source"`
		Items           int    `json:"items"`
		Returned        int    `json:"returned"`
		AlreadyReturned int    `json:"alreadyReturned"`
		Unmatched       int    `json:"unmatched"`
		Revoked         int    `json:"revoked"`
	}{"sha256:" + report.Source, report.Items, report.Returned, report.AlreadyReturned, len(report.Unmatched), report.Revoked})
}
