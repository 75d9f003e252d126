package web

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
)

// chromiumPath is where Debian's chromium package installs the browser
// (scripts/install-test-deps.sh installs it where the package manager
// allows).
const chromiumPath = "/usr/bin/chromium"

// TestDashboardInBrowser runs a stream job registered with the server,
// loads the dashboard in headless Chromium, checks that the overview, the
// job's graph, its live figures and plots, and a topic page render and
// change, and saves a screenshot of the job page (to the test's temporary
// directory, or to $SLUICE_DASHBOARD_SCREENSHOT).
func TestDashboardInBrowser(t *testing.T) {
	skipWithoutChromium(t)
	l := openLog(t)
	offs, err := logstore.OpenOffsetStore(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if err := offs.Commit(context.Background(), "billing", map[logstore.TopicPartition]logstore.CommittedOffset{
		{Topic: "clicks", Partition: 0}: {Offset: 3, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	o := observe.New(observe.Options{Log: l, Offsets: offs, Interval: 300 * time.Millisecond})
	s, err := New(Config{Addr: "127.0.0.1:0", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Registered without a graph: the dashboard draws the job's plan.
	if _, err := s.Jobs().Register("squares", startJob(t, true)); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go o.Run(runCtx)
	base := serve(t, s)

	b := newBrowser(t)
	defer b.close()
	ctx, poll, text := b.ctx, b.poll, b.text

	// Overview: the job and the topic are listed, and it goes live.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/")); err != nil {
		t.Fatal(err)
	}
	poll("the job in the overview", `!!document.querySelector('a[href="#/jobs/squares"]')`)
	poll("the topic in the overview", `!!document.querySelector('a[href="#/topics/clicks"]')`)
	poll("the live connection", `document.getElementById('conn').textContent === 'live'`)
	seq := text("#updated")
	poll("an overview update", `document.getElementById('updated').textContent !== `+strconv.Quote(seq))

	// The job page: the plan's five vertices and four edges (the map
	// fans out to the filter and to a second sink), laid out in layers
	// left to right within the card, live figures that change, plots
	// with lines.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/jobs/squares")); err != nil {
		t.Fatal(err)
	}
	poll("the graph's vertices", `document.querySelectorAll('#graph-svg g.vertex').length === 5`)
	poll("the graph's edges", `document.querySelectorAll('#graph-svg path.edge').length === 4`)
	poll("the fan-out from the map", `document.querySelectorAll('#graph-svg path.edge[data-from="square"]').length === 2`)
	poll("a rebalance edge label", `[...document.querySelectorAll('#graph-svg text.elabel')].some(e => e.textContent === 'rebalance')`)
	poll("no inferred edges", `document.querySelectorAll('#graph-svg path.edge.inferred').length === 0`)
	// Layers: source, map, then the filter and the audit sink side by
	// side, then the filter's sink; each vertex right of its inputs.
	poll("layers left to right", `(() => {
		const x = (id) => document.querySelector('#graph-svg g.vertex[data-id="' + id + '"]').transform.baseVal[0].matrix.e;
		return x('numbers') < x('square') && x('square') < x('even') && x('even') === x('audit') && x('even') < x('sink');
	})()`)
	poll("the graph within the card", `document.getElementById('graph-svg').getBoundingClientRect().width <= document.getElementById('graph').getBoundingClientRect().width`)
	poll("kinds on vertices", `/sink/.test(document.querySelector('#graph-svg g.vertex[data-id="audit"] .v-kind').textContent)`)
	poll("backpressure levels on vertices", `[...document.querySelectorAll('#graph-svg g.vertex')].every(g => /\b(ok|low|high)\b/.test(g.getAttribute('class')))`)
	poll("a throughput figure", `/\d/.test(document.getElementById('stat-in').textContent)`)
	before := text(`#graph-svg g.vertex[data-id="square"] .v-total`)
	poll("the square vertex's totals to change", `document.querySelector('#graph-svg g.vertex[data-id="square"] .v-total').textContent !== `+strconv.Quote(before))
	total := text("#stat-total-in")
	poll("the job's total to change", `document.getElementById('stat-total-in').textContent !== `+strconv.Quote(total))
	poll("a watermark lag", `/(ms|s)$/.test(document.getElementById('stat-lag').textContent)`)
	poll("the throughput plot", `!!document.querySelector('#plot-tput path.l-in') && document.querySelector('#plot-tput path.l-in').getAttribute('d').split('L').length > 3`)
	poll("the watermark-lag plot", `!!document.querySelector('#plot-lag path.l-lag')`)
	poll("completed checkpoints in the history", `/completed/.test(document.getElementById('checkpoints').textContent)`)
	poll("the last checkpoint figure", `/^#\d+$/.test(document.getElementById('stat-ckpt').textContent)`)
	poll("subtask rows", `document.querySelectorAll('#subtasks tbody tr').length === 8`)
	// docs/img/dashboard.png is refreshed with
	// SLUICE_DASHBOARD_SCREENSHOT=$PWD/docs/img/dashboard.png.
	b.screenshot("SLUICE_DASHBOARD_SCREENSHOT", "dashboard.png")

	// A topic page: both partitions with offsets and the group's lag.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/topics/clicks")); err != nil {
		t.Fatal(err)
	}
	poll("the partitions", `document.querySelectorAll('main tbody tr').length === 2`)
	poll("the group lag", `/billing: lag 2 \(at 3\)/.test(document.querySelector('main').textContent)`)

	// An unknown job shows the API's error.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/jobs/nope")); err != nil {
		t.Fatal(err)
	}
	poll("the unknown-job error", `/unknown job/.test((document.getElementById('error') || {}).textContent || '')`)

	// With a token, the page asks for it and then goes live.
	ts, err := New(Config{Addr: "127.0.0.1:0", Token: "s3cret", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tbase := serve(t, ts)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`localStorage.clear()`), chromedp.Navigate(tbase+"/#/")); err != nil {
		t.Fatal(err)
	}
	poll("the token form", `!document.getElementById('tokenform').classList.contains('hidden')`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "s3cret"), chromedp.Click(chromedp.CSS("#tokenform button"))); err != nil {
		t.Fatal(err)
	}
	poll("the overview after the token", `!!document.querySelector('a[href="#/jobs/squares"]') && document.getElementById('conn').textContent === 'live'`)
}

func skipWithoutChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the browser test: %s not found (install Debian's chromium package, see scripts/install-test-deps.sh)", chromiumPath)
	}
}

// browser is a headless Chromium with one tab, for one test.
type browser struct {
	t     *testing.T
	ctx   context.Context // the tab, with the test's overall deadline
	close func()
}

// newBrowser starts headless Chromium; the caller defers close (before
// the servers it talks to stop, so that no stream is left open).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 1000),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	return &browser{t: t, ctx: ctx, close: func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
	}}
}

// screenshot saves the page as a PNG to the file named by the environment
// variable env, or to name in the test's temporary directory.
func (b *browser) screenshot(env, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	out := os.Getenv(env)
	if out == "" {
		out = filepath.Join(b.t.TempDir(), name)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot saved to %s (%d bytes)", out, len(png))
}

// navigate loads url in the tab.
func (b *browser) navigate(url string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("navigating to %s: %v", url, err)
	}
}

// poll waits until the JavaScript expression expr is true in the page.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	for try := 0; ; try++ {
		_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		if !contextGone(err) || try == maxContextRetries {
			b.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
}

// maxContextRetries bounds how often one evaluation is repeated after
// contextGone errors.
const maxContextRetries = 10

// contextGone reports the DevTools error of an evaluation sent to a
// JavaScript context the page has just replaced (a navigation or reload
// racing the call, seen once in a loaded run of TestClusterPageInBrowser):
// the evaluation is repeated, and then runs in the new context.
func contextGone(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Cannot find context with specified id")
}

// text reads an element's text in one evaluation in the page: the
// dashboard re-renders live figures, so a node found by one DevTools call
// may be gone by the next (chromedp.TextContent queries the node, then
// reads it by id).
func (b *browser) text(sel string) string {
	b.t.Helper()
	b.poll("the element "+sel, `!!document.querySelector(`+strconv.Quote(sel)+`)`)
	for try := 0; ; try++ {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ''`))
		if err == nil {
			return v
		}
		if !contextGone(err) || try == maxContextRetries {
			b.t.Fatalf("text of %s: %v", sel, err)
		}
	}
}

// TestClusterPageInBrowser loads the cluster page against servers with a
// fake cluster instance (no Kafka): on a cluster-only server it is the
// landing page, shows the members, tasks and rebalance history, escapes
// their text and refreshes; on a server with jobs too, the overview stays
// the landing page and the nav links to the cluster page.
func TestClusterPageInBrowser(t *testing.T) {
	skipWithoutChromium(t)
	f := &fakeCluster{}
	s, err := New(Config{Addr: "127.0.0.1:0", Cluster: f.Status}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	both, err := New(Config{Addr: "127.0.0.1:0", Observer: observe.New(observe.Options{Log: openLog(t)}), Cluster: f.Status}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bothBase := serve(t, both)
	b := newBrowser(t)
	defer b.close()
	rows := func(sel string) string {
		return `document.querySelectorAll(` + strconv.Quote(sel+` tbody tr`) + `).length`
	}
	cell := func(sel string, row, col int) string {
		return b.text(sel + ` tbody tr:nth-child(` + strconv.Itoa(row) + `) td:nth-child(` + strconv.Itoa(col) + `)`)
	}

	// A cluster-only server lands on the cluster page.
	b.navigate(base + "/#/")
	b.poll("the application name", `(document.getElementById('cluster-app') || {}).textContent === 'orders-app'`)
	b.poll("the nav's single cluster link", `document.querySelectorAll('#nav a').length === 1 && !!document.getElementById('nav-cluster')`)
	for id, want := range map[string]string{"#stat-instance": "b", "#stat-generation": "7", "#stat-delivery": "exactly-once",
		"#stat-commits": "12", "#stat-aborts": "1", "#stat-rebalances": "2", "#stat-busy": "90%", "#stat-recommended": "4"} {
		if got := b.text(id); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if got := b.text("#cluster-advice"); !strings.Contains(got, "scale out") {
		t.Errorf("autoscaling advice %q, want a scale-out advice", got)
	}

	b.poll("three member rows", rows("#cluster-members")+` === 3`)
	if got := cell("#cluster-members", 2, 1); got != "b this" {
		t.Errorf("this instance's member row starts with %q, want %q", got, "b this")
	}
	if got := cell("#cluster-members", 2, 4); got != "orders[0 3]" {
		t.Errorf("this instance's member tasks %q", got)
	}
	if got := cell("#cluster-members", 3, 2); got != "<b>bold</b>" {
		t.Errorf("a host with markup shows as %q, want the literal text", got)
	}
	b.poll("no markup injected", `document.querySelectorAll('main b').length === 0`)

	b.poll("two task rows", rows("#cluster-tasks")+` === 2`)
	for col, want := range []string{"0_3", "orders", "3", "40", "0", "no"} {
		if got := cell("#cluster-tasks", 2, col+1); got != want {
			t.Errorf("task 0_3, column %d: %q, want %q", col+1, got, want)
		}
	}
	if got := cell("#cluster-tasks", 1, 6); got != "yes" {
		t.Errorf("task 0_0 restored: %q, want yes", got)
	}
	b.poll("two rebalance rows", rows("#cluster-history")+` === 2`)
	if got := cell("#cluster-history", 1, 3); got != "orders[1]" {
		t.Errorf("the latest rebalance comes first: revoked %q, want orders[1]", got)
	}

	// The page polls: task 0_0's record count grows with every call.
	before := cell("#cluster-tasks", 1, 4)
	b.poll("a refresh of the tasks", `document.querySelector('#cluster-tasks tbody tr td:nth-child(4)').textContent !== `+strconv.Quote(before))
	b.poll("the live indicator", `document.getElementById('conn').textContent === 'live'`)
	b.screenshot("SLUICE_CLUSTER_SCREENSHOT", "cluster.png")

	// The job pages do not exist on a cluster-only server.
	b.navigate(base + "/#/jobs/squares")
	b.poll("the no-jobs error", `/cluster page only/.test((document.getElementById('error') || {}).textContent || '')`)

	// With jobs too, the overview is the landing page and the nav leads
	// to the cluster page.
	b.navigate(bothBase + "/#/")
	b.poll("the overview", `(document.querySelector('main h1') || {}).textContent === 'Overview'`)
	b.poll("the nav's two links", `document.querySelectorAll('#nav a').length === 2 && !!document.getElementById('nav-cluster')`)
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("#nav-cluster"))); err != nil {
		t.Fatal(err)
	}
	b.poll("the cluster page from the nav", rows("#cluster-members")+` === 3 && `+rows("#cluster-tasks")+` === 2`)
}
