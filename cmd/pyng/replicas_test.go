package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
)

// replicaSet spreads one partner's calls round robin over the replicas that are up, and counts
// the 2xx answers of each replica.
type replicaSet struct {
	p        *partner
	replicas []*process
	down     []bool
	answered []int
	next     int
}

// pick returns the next replica that is up.
func (r *replicaSet) pick() int {
	for {
		i := r.next % len(r.replicas)
		r.next++
		if !r.down[i] {
			return i
		}
	}
}

func (r *replicaSet) call(method, path string, body, out any) int {
	r.p.t.Helper()
	i := r.pick()
	r.p.base = r.replicas[i].base
	status := r.p.call(method, path, body, out)
	if status/100 == 2 {
		r.answered[i]++
	}
	return status
}

// kill stops replica i with SIGKILL and takes it out of the rotation.
func (r *replicaSet) kill(t *testing.T, i int) {
	t.Helper()
	r.replicas[i].kill(t)
	r.down[i] = true
}

// signUpThroughTheForm signs a customer up as a browser would: the signup page from one replica
// (its CSRF cookie and hidden field), the form posted to another.
func (r *replicaSet) signUpThroughTheForm(t *testing.T, signupURL string) {
	t.Helper()
	u, err := url.Parse(signupURL)
	if err != nil {
		t.Fatalf("signupUrl %q: %v", signupURL, err)
	}
	i := r.pick()
	resp, err := http.Get(r.replicas[i].base + u.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET signup page: %d\n%s", resp.StatusCode, page)
	}
	r.answered[i]++
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "pyng-csrf") {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("signup page set no CSRF cookie: %v", resp.Header["Set-Cookie"])
	}
	form := url.Values{
		"token":         {u.Query().Get("token")},
		"csrf":          {field(t, string(page), `name="csrf" value="([^"]+)"`)},
		"terms":         {field(t, string(page), `name="terms" value="([^"]+)"`)},
		"name":          {"Jo Citizen"},
		"email":         {"jo@example.com"},
		"bsb":           {"062-000"},
		"accountNumber": {"12345678"},
		"accountName":   {"J CITIZEN"},
		"customerType":  {"individual"},
		"authorised":    {"yes"},
		"consent":       {"yes"},
		"step":          {"confirm"}, // the review page's confirm button
	}
	req, _ := http.NewRequest("POST", r.replicas[r.pick()].base+"/signup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/agreement?token=") {
		t.Fatalf("POST /signup: %d, Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// replicaRow is row i of every batch of the three-replica test and the outcome it must reach:
// every 40th row names a customer nobody invited, amounts ending in 51 and 52 cents are the
// sandbox's insufficientFunds and accountClosed, and every other row succeeds.
func replicaRow(customers []string, i int) (row map[string]any, wantState, wantReason string) {
	customer := customers[i%len(customers)]
	amount := int64(100*(i+1) + i%50) // cents 00 to 49: succeeds
	wantState = "succeeded"
	switch {
	case i%40 == 0:
		customer, wantState, wantReason = fmt.Sprintf("NOBODY-%d", i), "failed", "customerNotActive"
	case i%20 == 5:
		amount, wantState, wantReason = int64(100*(i+1)+51), "failed", "insufficientFunds"
	case i%20 == 6:
		amount, wantState, wantReason = int64(100*(i+1)+52), "failed", "accountClosed"
	}
	row = map[string]any{"rowReference": fmt.Sprintf("R%03d", i), "customerReference": customer, "amount": amount}
	return row, wantState, wantReason
}

// TestThreeReplicasShareOnePostgreSQLDatabase runs three server processes on one PostgreSQL
// database, as several stateless replicas behind a load balancer, sends a partner's requests to
// them round robin, kills one with SIGKILL while batches execute, and checks that the survivors
// finish every batch with each row debited at most once, that every replica answered, and that
// the job queue spread the batches over the replicas.
func TestThreeReplicasShareOnePostgreSQLDatabase(t *testing.T) {
	t.Parallel()
	started := time.Now()
	databaseURL := databaseURL(t, storage.EnginePostgres)

	// Credentials provisioned by an operator with the admin commands, against the same database.
	db := "-database-url=" + databaseURL
	site, client := provisionSite(t, db, "Replicated")

	env := []string{"PYNG_JOB_POLL_INTERVAL=50ms", "PYNG_JOB_RESCUE_AFTER=2s",
		"PYNG_SANDBOX_SETTLEMENT_DELAY=300ms", "PYNG_JOB_WORKERS=4"}
	r := &replicaSet{p: &partner{t: t, siteID: site}}
	// Each replica's pool is configured by its URL: a small pool, and an application_name that
	// tells its connections apart in pg_stat_activity.
	const poolMaxConns = 5
	names := make([]string, 3)
	for i := range names {
		names[i] = fmt.Sprintf("pyng-test-%d-replica-%d", os.Getpid(), i)
		u := fmt.Sprintf("%s&pool_max_conns=%d&application_name=%s", databaseURL, poolMaxConns, names[i])
		p, _ := launchServer(t, pyngBinary, u, env...)
		r.replicas = append(r.replicas, p)
	}
	for _, p := range r.replicas {
		p.waitReady(t)
	}
	// Once started (migrations use a connection of their own for a moment), a replica holds at
	// most its pool plus the one connection River takes out of the pool to LISTEN for new jobs.
	stopSampling := sampleConnections(t, databaseURL, names)
	r.down, r.answered = make([]bool, 3), make([]int, 3)
	// A token from one replica is good on every other: they share the database's signing key.
	r.p.token = token(t, r.replicas[r.pick()].base, client.ClientID, client.ClientSecret)
	ready := time.Now()

	// Twelve customers invited; three sign up through the web form (page from one replica, form
	// to another), the others through the sandbox simulator.
	customers := make([]string, 12)
	for c := range customers {
		customers[c] = fmt.Sprintf("CUST-%02d", c)
		var invitation struct{ Data struct{ SignupURL string } }
		if st := r.call("POST", "/customers/invitations", map[string]string{"customerReference": customers[c]}, &invitation); st != 201 {
			t.Fatalf("invite %s: %d", customers[c], st)
		}
		if c < 3 {
			r.signUpThroughTheForm(t, invitation.Data.SignupURL)
			continue
		}
		if st := r.call("POST", "/sandbox/customers/"+customers[c]+"/signup", nil, nil); st != 200 {
			t.Fatalf("sandbox signup %s: %d", customers[c], st)
		}
	}
	for _, c := range customers {
		var link struct{ Data struct{ State string } }
		if st := r.call("GET", "/customers/"+c, nil, &link); st != 200 || link.Data.State != "linked" {
			t.Fatalf("customer %s: %d %q, want linked", c, st, link.Data.State)
		}
	}

	const batches, rowsPerBatch, victim = 20, 200, 1
	submit := func(b int) {
		t.Helper()
		rows := make([]map[string]any, rowsPerBatch)
		for i := range rows {
			rows[i], _, _ = replicaRow(customers, i)
		}
		body := map[string]any{"batchReference": fmt.Sprintf("B%02d", b), "rows": rows}
		if st := r.call("POST", "/batches", body, nil); st != 202 {
			t.Fatalf("submit B%02d: %d", b, st)
		}
	}
	for b := range batches / 2 {
		submit(b)
	}
	// Kill a replica while the batches just submitted execute: rows handed to the rail, not settled.
	waitFor(t, 20*time.Second, "the last batch submitted in progress", func() bool {
		var v batchView
		r.call("GET", fmt.Sprintf("/batches/B%02d", batches/2-1), nil, &v)
		return v.Data.State == "inProgress"
	})
	r.kill(t, victim)
	killed := time.Now()
	for b := batches / 2; b < batches; b++ {
		submit(b)
	}

	succeeded, linkedRows := 0, 0
	for b := range batches {
		v := waitCompleted(t, 120*time.Second, r.call, fmt.Sprintf("B%02d", b), rowsPerBatch)
		for i, row := range v.Data.Rows {
			_, wantState, wantReason := replicaRow(customers, i)
			if row.RowReference != fmt.Sprintf("R%03d", i) || row.State != wantState || row.FailureReason != wantReason {
				t.Errorf("B%02d row %d = %s %s %q, want R%03d %s %q", b, i, row.RowReference, row.State, row.FailureReason, i, wantState, wantReason)
			}
			if row.State == "succeeded" {
				succeeded++
			}
			if wantReason != "customerNotActive" {
				linkedRows++
			}
		}
	}
	completed := time.Since(killed)
	connections := stopSampling()
	for i, n := range connections {
		if n > poolMaxConns+1 {
			t.Errorf("replica %d held %d connections at once, more than its pool_max_conns=%d and River's listener", i, n, poolMaxConns)
		}
	}

	references := make([]string, batches)
	for b := range batches {
		references[b] = fmt.Sprintf("B%02d", b)
	}
	checkLedger(t, databaseURL, r.p.siteID, references, succeeded, linkedRows)
	for i, n := range r.answered {
		if n == 0 {
			t.Errorf("replica %d answered no request", i)
		}
	}
	clients, finishers, rescued := batchJobs(t, databaseURL, batches)
	if len(clients) < 2 {
		t.Errorf("execute_batch jobs were worked by %d River client(s) %q, want the work spread over at least 2", len(clients), clients)
	}
	t.Logf("ready in %s; all %d batches completed %s after the kill; total %s", ready.Sub(started).Round(time.Millisecond),
		batches, completed.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	t.Logf("most connections held at once per replica %v (pool_max_conns=%d, plus River's listener)", connections, poolMaxConns)
	t.Logf("2xx answers per replica %v (replica %d killed); %d distinct River clients worked execute_batch jobs; "+
		"jobs finished per client %v; %d jobs rescued from the killed replica", r.answered, victim, len(clients), finishers, rescued)
}

// batchJobs reads River's execute_batch jobs through the queue's own client: the distinct River
// clients that worked any of them (each fetch appends the client's id to attempted_by), how many
// jobs each client finished, and how many jobs River's rescuer took back from a dead worker. It
// waits until there are want jobs, all completed.
func batchJobs(t *testing.T, databaseURL string, want int) (clients []string, finishers []int, rescued int) {
	t.Helper()
	// River records a job's completion shortly after the job returns, so the batch may read
	// completed a moment before its job does.
	jobs := completedJobs(t, databaseURL, billing.ExecuteBatchJob{}.Kind(), want)
	finished := map[string]int{}
	for _, j := range jobs {
		for _, c := range j.AttemptedBy {
			if !slices.Contains(clients, c) {
				clients = append(clients, c)
			}
		}
		if n := len(j.AttemptedBy); n > 0 {
			finished[j.AttemptedBy[n-1]]++
		}
		if slices.ContainsFunc(j.Errors, func(e rivertype.AttemptError) bool { return strings.Contains(e.Error, "rescued") }) {
			rescued++
		}
	}
	slices.Sort(clients)
	finishers = make([]int, len(clients))
	for i, c := range clients {
		finishers[i] = finished[c]
	}
	return clients, finishers, rescued
}

// provisionedClient is an API client as client create prints it.
type provisionedClient struct{ ClientID, ClientSecret string }

// provisionSite creates, with the admin commands against db (a -database-url flag), an
// organisation and its site, both named name, and an API client of the organisation with every
// scope; it returns the site's id and the client.
func provisionSite(t *testing.T, db, name string) (siteID string, client provisionedClient) {
	t.Helper()
	var org struct{ OrganisationID string }
	code, out, errOut := runPyng(t, "admin", "org", "create", db, "--name", name)
	decodeOne(t, code, out, errOut, &org)
	var site struct{ SiteID string }
	code, out, errOut = runPyng(t, "admin", "site", "create", db, "--org", org.OrganisationID, "--name", name)
	decodeOne(t, code, out, errOut, &site)
	code, out, errOut = runPyng(t, "admin", "client", "create", db, "--org", org.OrganisationID,
		"--scopes", billing.FormatScopes(billing.AllScopes))
	decodeOne(t, code, out, errOut, &client)
	return site.SiteID, client
}

// completedJobs reads River's jobs of kind through the queue's own client, once there are want
// of them (any number above zero when want is negative), all completed.
func completedJobs(t *testing.T, databaseURL, kind string, want int) []*rivertype.JobRow {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queue, err := db.NewJobClient(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []*rivertype.JobRow
	// A job whose last step committed in a replica killed before River recorded the job's
	// completion stays running until River's rescuer, which runs every 30 s on the leader (a new
	// one elected if the killed replica led), hands it to another client: its batch reads
	// completed well before the job does.
	waitFor(t, 90*time.Second, fmt.Sprintf("%d completed %s jobs", max(want, 1), kind), func() bool {
		res, err := queue.JobList(ctx, river.NewJobListParams().Kinds(kind).First(10_000))
		if err != nil {
			t.Fatal(err)
		}
		jobs = res.Jobs
		return (len(jobs) == want || want < 0 && len(jobs) > 0) &&
			!slices.ContainsFunc(jobs, func(j *rivertype.JobRow) bool { return j.State != rivertype.JobStateCompleted })
	})
	return jobs
}

// sampleConnections counts, every 20ms until the returned function is called, the connections
// each application name holds on the server, and the function returns the most seen at once.
func sampleConnections(t *testing.T, databaseURL string, names []string) (stop func() []int) {
	t.Helper()
	db := openDirect(t, storage.EnginePostgres, databaseURL)
	most := make([]int, len(names))
	done, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		defer db.Close()
		for {
			for i, name := range names {
				var n int
				err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&n)
				if err != nil {
					stopped <- err
					return
				}
				most[i] = max(most[i], n)
			}
			select {
			case <-done:
				stopped <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []int {
		t.Helper()
		close(done)
		if err := <-stopped; err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		return most
	}
}

func TestServeHelpSaysTheURLConfiguresThePool(t *testing.T) {
	code, _, errOut := runPyng(t, "serve", "-h")
	if code != 0 || !strings.Contains(errOut, "pool_max_conns") || !strings.Contains(errOut, "pool_min_conns") {
		t.Fatalf("serve -h: exit %d, %q; want the pool parameters of -database-url", code, errOut)
	}
}
