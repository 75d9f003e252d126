package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestTenantsConcurrent writes tenants and namespaces from several
// goroutines while others read them, as the HTTP admin API and the Kafka
// listener do (run with -race), and checks that the registry replayed
// from the topic equals the one in memory and never holds a namespace of
// a deleted tenant, whatever the interleaving of DeleteTenant and
// PutNamespace.
func TestTenantsConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir)
	tn, err := OpenTenants(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 2 { // readers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tn.NamespaceOf(fmt.Sprintf("t%d.ns.topic", r))
				tn.IsMember("User:alice", "t0.ns.topic")
				ts, _ := tn.List()
				for _, x := range ts {
					_ = len(x.Members)
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 40 {
				name := fmt.Sprintf("t%d", i%3)
				switch (w + i) % 4 {
				case 0:
					_ = tn.PutTenant(ctx, Tenant{Name: name, Members: []string{"User:alice", fmt.Sprintf("User:w%d", w)}})
				case 1:
					_ = tn.PutNamespace(ctx, Namespace{Tenant: name, Name: "ns", ProduceRate: float64(i)})
				case 2:
					_ = tn.DeleteNamespace(ctx, name, "ns")
				case 3:
					_ = tn.DeleteTenant(ctx, name)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	ts, nss := tn.List()
	check := func(what string, ts []Tenant, nss []Namespace) {
		t.Helper()
		have := map[string]bool{}
		for _, x := range ts {
			have[x.Name] = true
		}
		for _, n := range nss {
			if !have[n.Tenant] {
				t.Fatalf("%s: namespace %s/%s of a tenant that does not exist", what, n.Tenant, n.Name)
			}
		}
	}
	check("in memory", ts, nss)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	defer l.Close()
	re, err := OpenTenants(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	rts, rnss := re.List()
	check("replayed", rts, rnss)
	if fmt.Sprint(ts, nss) != fmt.Sprint(rts, rnss) {
		t.Fatalf("replayed registry differs:\nmemory   %v %v\nreplayed %v %v", ts, nss, rts, rnss)
	}
}
