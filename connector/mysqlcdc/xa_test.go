package mysqlcdc

import "testing"

// TestXATransactionResumesMidway: an XA transaction (XA START ... XA
// END, XA PREPARE, XA COMMIT), read in part and resumed from the
// position saved inside it: the rest arrives, nothing twice.
func TestXATransactionResumesMidway(t *testing.T) {
	lt := openLive(t, "revcdc_xa", "id INT PRIMARY KEY, v INT")
	lt.resumeMidTransaction(t, []string{
		"XA START 'revcdc_xa1'",
		"INSERT INTO " + lt.name + " VALUES (1, 1)",
		"INSERT INTO " + lt.name + " VALUES (2, 2)",
		"XA END 'revcdc_xa1'",
		"XA PREPARE 'revcdc_xa1'",
		"XA COMMIT 'revcdc_xa1'",
	}, 1, 3, 2)
}
