package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

const becsUsage = `BECS rail:
  pyng admin site set-rail --site SITEID --rail becs --user-id 123456 --user-name NAME --bank CBA
      --description DESC --trace-bsb 062-000 --trace-account ACCOUNT --remitter NAME [--self-balancing]
  pyng admin site set-rail --site SITEID --rail sandbox
  pyng admin becs files list --site SITEID            one JSON line a file
  pyng admin becs files get FILEID                    the file's exact bytes
  pyng admin becs files lodged FILEID                 record that the file was lodged with the bank`

// The debit user's flags of "site set-rail", each the field of aba.DebitUser it sets.
var debitUserFlags = []string{"user-id", "user-name", "bank", "description", "trace-bsb", "trace-account", "remitter"}

func init() {
	optional := map[string]string{}
	for _, f := range debitUserFlags {
		optional[f] = ""
	}
	adminCommands["site set-rail"] = adminCommand{flags: []string{"site", "rail"}, optional: optional, bools: []string{"self-balancing"},
		run: setRail}
}

// setRail puts a site on a rail; for the BECS rail, with its debit user, every field checked
// before anything is written.
func setRail(ctx context.Context, a adminEnv, f map[string]string) (any, error) {
	out := map[string]any{"siteId": f["site"], "rail": f["rail"]}
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
		if _, err := a.db.GetSite(ctx, f["site"]); err != nil {
			if errors.Is(err, billing.ErrNotFound) {
				return nil, usageError{"--site: No site with this id exists."}
			}
			return nil, err
		}
		r, err := becs.Open(ctx, a.db.Conn(), billing.SystemClock{})
		if err != nil {
			return nil, err
		}
		u, err := r.SetUser(ctx, f["site"], aba.DebitUser{UserID: f["user-id"], UserName: f["user-name"], Institution: f["bank"],
			Description: f["description"], TraceBSB: aba.BSB(f["trace-bsb"]), TraceAccount: f["trace-account"], Remitter: f["remitter"],
			SelfBalancing: f["self-balancing"] == "true"})
		var fields aba.Errors
		if errors.As(err, &fields) || err != nil && strings.Contains(err.Error(), "BSB") {
			return nil, usageError{"the debit user's details: " + err.Error()}
		}
		if err != nil {
			return nil, err
		}
		out["debitUser"] = map[string]any{"userId": u.UserID, "userName": u.UserName, "bank": u.Institution, "description": u.Description,
			"traceBsb": u.TraceBSB, "traceAccount": u.TraceAccount, "remitter": u.Remitter, "selfBalancing": u.SelfBalancing}
	}
	site, err := a.service.SetSiteRail(ctx, f["site"], f["rail"])
	if err != nil {
		return nil, err
	}
	out["rail"] = site.Rail
	return out, nil
}

// becsAdmin runs "pyng admin becs NOUN VERB [ID] [flags]".
func becsAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return usageError{"admin becs needs a noun and a verb, for example: admin becs files list --site SITEID"}
	}
	name := args[0] + " " + args[1]
	args = args[2:]
	var id string
	if name == "files get" || name == "files lodged" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return usageError{fmt.Sprintf("admin becs %s needs a file id", name)}
		}
		id, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("admin becs "+name, flag.ContinueOnError)
	values := app.RegisterFlags(fs, append(append([]string{}, app.DatabaseSettings...), app.KeySettings...)...)
	site := fs.String("site", "", "")
	if err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, becsUsage)
			return nil
		}
		return err
	}
	switch name {
	case "files list", "files get", "files lodged":
	default:
		return usageError{fmt.Sprintf("unknown admin command \"becs %s\"", name)}
	}
	if name == "files list" && *site == "" {
		return usageError{"--site is required"}
	}
	db, cfg, err := openDatabase(ctx, values, true, true)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := becs.Open(ctx, db.Conn(), billing.SystemClock{})
	if err != nil {
		return err
	}
	err = becsFiles(ctx, name, id, *site, r, db, cfg, stdout)
	if errors.Is(err, becs.ErrNotFound) {
		return usageError{fmt.Sprintf("no BECS file %q", id)}
	}
	return err
}

func becsFiles(ctx context.Context, name, id, site string, r *becs.Rail, db storage.Database, cfg app.Config, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	now := billing.SystemClock{}.Now()
	switch name {
	case "files list":
		files, err := r.Files(ctx, site)
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
		_, err = stdout.Write(content)
		return err
	}
	f, err := r.Lodge(ctx, id)
	if errors.Is(err, becs.ErrTooLate) {
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
	service, err := app.NewService(ctx, db, billing.SystemClock{}, cfg.InvitationTTL, cfg.SettlementDelay, cfg.Sandbox)
	if err != nil {
		return err
	}
	if _, err := service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
		return fmt.Errorf("the file is lodged; recording its rows succeeded failed (their batches record it at their next step): %w", err)
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
