package web

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the browser test: %s not found (install Debian's chromium package, see scripts/install-test-deps.sh)", chromiumPath)
	}
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
	if _, err := s.Jobs().Register("squares", startJob(t, true), observe.WithGraph(jobGraph)); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go o.Run(runCtx)
	base := serve(t, s)

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
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
	// text reads an element's text in one evaluation in the page: the
	// dashboard re-renders live figures, so a node found by one DevTools
	// call may be gone by the next (chromedp.TextContent queries the node,
	// then reads it by id).
	text := func(sel string) string {
		t.Helper()
		poll("the element "+sel, `!!document.querySelector(`+strconv.Quote(sel)+`)`)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ''`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	// Overview: the job and the topic are listed, and it goes live.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/")); err != nil {
		t.Fatal(err)
	}
	poll("the job in the overview", `!!document.querySelector('a[href="#/jobs/squares"]')`)
	poll("the topic in the overview", `!!document.querySelector('a[href="#/topics/clicks"]')`)
	poll("the live connection", `document.getElementById('conn').textContent === 'live'`)
	seq := text("#updated")
	poll("an overview update", `document.getElementById('updated').textContent !== `+strconv.Quote(seq))

	// The job page: four vertices, three edges, live figures that change,
	// plots with lines.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/jobs/squares")); err != nil {
		t.Fatal(err)
	}
	poll("the graph's vertices", `document.querySelectorAll('#graph-svg g.vertex').length === 4`)
	poll("the graph's edges", `document.querySelectorAll('#graph-svg path.edge').length === 3`)
	poll("a rebalance edge label", `[...document.querySelectorAll('#graph-svg text.elabel')].some(e => e.textContent === 'rebalance')`)
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
	poll("subtask rows", `document.querySelectorAll('#subtasks tbody tr').length === 6`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// The screenshot goes to the test's temporary directory unless
	// SLUICE_DASHBOARD_SCREENSHOT names a file (docs/img/dashboard.png is
	// refreshed with SLUICE_DASHBOARD_SCREENSHOT=$PWD/docs/img/dashboard.png).
	out := os.Getenv("SLUICE_DASHBOARD_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to %s (%d bytes)", out, len(png))

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
