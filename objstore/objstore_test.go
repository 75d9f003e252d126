package objstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
)

func TestMemConformance(t *testing.T) { objstoretest.Conformance(t, objstore.NewMem()) }

func TestS3Conformance(t *testing.T) { objstoretest.Conformance(t, objstoretest.Open(t)) }

// TestS3Prefix: two stores on one bucket with different prefixes do not
// see each other's objects.
func TestS3Prefix(t *testing.T) {
	srv := objstoretest.StartServer(t)
	a, err := objstore.Open(srv.Bucket(t, "bkt", "one"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(srv.Bucket(t, "bkt", "two/deep"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := objstore.Check(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "k", strings.NewReader("A"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("prefix two sees prefix one's object: %v", err)
	}
	if l, _ := a.List(ctx, ""); len(l) != 1 || l[0].Key != "k" {
		t.Fatalf("list: %+v", l)
	}
}

func TestCheckMissingBucket(t *testing.T) {
	srv := objstoretest.StartServer(t)
	cfg := srv.Bucket(t, "exists", "")
	cfg.URL = "s3://missing"
	s, err := objstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := objstore.Check(context.Background(), s); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("check of a missing bucket: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  objstore.Config
		want string
	}{
		{objstore.Config{URL: "file:///tmp"}, "scheme"},
		{objstore.Config{URL: "s3://"}, "no bucket"},
		{objstore.Config{URL: "s3://key:secret@b/p"}, "credentials"},
		{objstore.Config{URL: "s3://b", Endpoint: "localhost:9000"}, "endpoint"},
		{objstore.Config{URL: "s3://b", Endpoint: "http://h:1/path"}, "path"},
	} {
		if _, err := objstore.Open(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %q", c.cfg, err, c.want)
		}
	}
}

func TestFaulty(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMem())
	ctx := context.Background()
	f.FailNext(objstore.OpPut, 2)
	for i := range 3 {
		err := f.Put(ctx, "k", strings.NewReader("v"), 1)
		if (i < 2) != errors.Is(err, objstore.ErrInjected) {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	f.SetDown(true)
	if _, err := objstore.ReadAll(ctx, f, "k"); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("get while down: %v", err)
	}
	f.SetDown(false)
	if b, err := objstore.ReadAll(ctx, f, "k"); err != nil || string(b) != "v" {
		t.Fatalf("get after: %q %v", b, err)
	}
	if f.Calls(objstore.OpPut) != 3 {
		t.Fatalf("calls: %d", f.Calls(objstore.OpPut))
	}
}
