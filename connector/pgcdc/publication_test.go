package pgcdc

import (
	"context"
	"strings"
	"testing"
)

// TestPartialPublicationRefused: an existing publication that does not
// publish every change of the tables (updates and deletes left out, a row
// filter, a column list) would make the source miss changes without a sign: it is
// refused at start, saying what is wrong.
func TestPartialPublicationRefused(t *testing.T) {
	for _, c := range []struct{ with, want string }{
		{" WITH (publish = 'insert')", "publish"},
		{" WHERE (v > 0)", "row filter"},
		{" (id)", "column list"},
	} {
		f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
		f.exec("CREATE PUBLICATION " + f.pub + " FOR TABLE " + f.table + c.with)
		s := openSplit(t, f.config(), nil)
		_, err := s.sp.Read(context.Background(), s.buf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("publication%s: Read error %v, want it refused (%s)", c.with, err, c.want)
		}
	}
}
