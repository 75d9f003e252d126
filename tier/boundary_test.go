package tier_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/logstore"
)

// TestDeleteRecordsBeforeManifestLoaded: DeleteRecords below the local
// start of a partition whose manifest the tier has not read yet (the
// store down since the start) cannot know the log start: it fails with
// the retriable ErrRemoteNotReady rather than answering the local start
// as the new low watermark having deleted nothing, after which the
// records below the offset were served again once the manifest loaded.
func TestDeleteRecordsBeforeManifestLoaded(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	cut := p.LocalLogStart() / 2
	if cut == 0 {
		t.Fatal("nothing only remote")
	}
	e.close()
	f.SetDown(true)
	e = openEnv(t, dir, f)
	p = e.part("t")
	got, err := p.DeleteRecords(cut)
	if err == nil {
		f.SetDown(false)
		e.sync()
		if _, rerr := p.Read(cut-1, 1000); !errors.Is(rerr, logstore.ErrOffsetOutOfRange) {
			t.Fatalf("DeleteRecords(%d) answered low watermark %d without an error, yet offset %d is read back once the manifest is loaded (%v)", cut, got, cut-1, rerr)
		}
		return
	}
	if !errors.Is(err, logstore.ErrRemoteNotReady) {
		t.Fatalf("DeleteRecords(%d) before the manifest is loaded: %v, want ErrRemoteNotReady", cut, err)
	}
	f.SetDown(false)
	e.sync()
	if got, err := p.DeleteRecords(cut); err != nil || got != cut {
		t.Fatalf("DeleteRecords(%d) once loaded: %d, %v", cut, got, err)
	}
	if _, err := p.Read(cut-1, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the deleted offset: %v", err)
	}
	readAll(t, p, int(cut), 600)
}
