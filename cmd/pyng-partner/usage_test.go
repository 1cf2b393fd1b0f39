package main

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
)

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, append(strings.Fields(c.name), "-h")...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: pyng-partner "+c.name+" [flags]") ||
				!strings.Contains(r.stdout, "-json") || r.stderr != "" {
				t.Errorf("-h: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"customers", "-h"}} {
		if r := cli(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "customers invite") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	tests := []struct {
		name   string
		args   []string
		env    bool // with the server's configuration in the environment
		stderr string
	}{
		{"no command", nil, true, "Commands:"},
		{"an unknown command", []string{"launch"}, true, `unknown command "launch"`},
		{"an unknown verb", []string{"customers", "delete", "X"}, true, `unknown command "customers delete"`},
		{"a group alone", []string{"customers"}, true, "Commands of pyng-partner customers"},
		{"a missing argument", []string{"customers", "show"}, true, "customers show needs CUSTOMER_REFERENCE"},
		{"a stray argument", []string{"customers", "show", "A", "B"}, true, `unexpected argument "B"`},
		{"an unknown flag", []string{"customers", "list", "--nope"}, true, "flag provided but not defined: -nope"},
		{"a reference that starts with a hyphen, before --", []string{"batches", "show", "-A1", "--csv"}, true,
			"flag provided but not defined: -A1 (an argument that starts with - goes after --, which ends the flags: show --csv -- -A1)"},
		{"a bad flag value", []string{"customers", "list", "--state", "happy"}, true, `--state "happy" is not one of`},
		{"no configuration", []string{"customers", "list"}, false, "missing --url (PYNG_URL), --client-id (PYNG_CLIENT_ID), --client-secret (PYNG_CLIENT_SECRET), --site (PYNG_SITE)"},
		{"a batch without its reference", []string{"batches", "submit", "x.csv"}, true, "--reference is required"},
		{"listen without its receiver", []string{"webhooks", "listen"}, true, "--forward-to is required"},
		{"listen to something not a URL", []string{"webhooks", "listen", "--forward-to", "localhost:3000"}, true, "is not an http or https URL"},
		{"an update of nothing", []string{"webhooks", "update", "whe_x"}, true, "nothing to change"},
		{"an endpoint of no event types", []string{"webhooks", "create", "--endpoint-url", "http://127.0.0.1:9/hook", "--events", ","}, true, `--events "," names no event type`},
		{"an update to no event types", []string{"webhooks", "update", "whe_x", "--events", " , "}, true, `--events " , " names no event type`},
		{"a bad interval", []string{"events", "tail", "--interval", "soon"}, true, `invalid value "soon" for flag -interval`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r result
			if tt.env {
				r = cli(t, s, tt.args...)
			} else {
				r = cli(t, nil, tt.args...)
			}
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", r.code, r.stdout, r.stderr, tt.stderr)
			}
		})
	}
	t.Run("flags name the configuration as the environment does", func(t *testing.T) {
		r := cli(t, nil, "customers", "list", "--url", s.URL, "--client-id", s.ClientID, "--client-secret", s.ClientSecret, "--site", s.Site.ID)
		if r.code != 0 {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
}
