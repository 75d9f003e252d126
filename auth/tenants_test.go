package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/logstore"
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

// TestDeleteTenantRefusedWhileTopicsRemain: a tenant whose namespaces are
// gone but whose topics ("TENANT.") remain cannot be deleted (they would
// become names of no tenant, open to all with allow.everyone.if.no.acl);
// the error names them and says to delete them; once they are deleted the
// tenant goes. Topics of another tenant whose name it prefixes do not count.
func TestDeleteTenantRefusedWhileTopicsRemain(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	tn, err := OpenTenants(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []string{"acme", "acme2"} {
		if err := tn.PutTenant(ctx, Tenant{Name: x, Members: []string{"User:alice"}}); err != nil {
			t.Fatal(err)
		}
		if err := tn.PutNamespace(ctx, Namespace{Tenant: x, Name: "prod"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"acme.prod.orders", "acme.prod.payments", "acme2.prod.orders", "acmeorders"} {
		if err := l.CreateTopic(topic, logstore.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.DeleteNamespace(ctx, "acme", "prod"); err != nil {
		t.Fatal(err)
	}
	err = tn.DeleteTenant(ctx, "acme")
	if !errors.Is(err, ErrTenant) || !strings.Contains(err.Error(), "acme.prod.orders, acme.prod.payments: delete them first") || strings.Contains(err.Error(), "acme2") {
		t.Fatalf("deleting a tenant with topics: %v", err)
	}
	if _, ok := tn.Tenant("acme"); !ok {
		t.Fatal("tenant deleted despite its topics")
	}
	for _, topic := range []string{"acme.prod.orders", "acme.prod.payments"} {
		if err := l.DeleteTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("deleting the tenant once its topics are gone: %v", err)
	}
}
