package mysqlcdc

import "testing"

// TestSavepointIsNotACommit: a transaction with a SAVEPOINT (which the
// server logs as a query event inside the transaction) read in part and
// resumed from the position saved after the savepoint: the rest of the
// transaction arrives, nothing twice. The savepoint must not end the
// transaction in the position (its GTID marked done, the resume point
// moved inside it).
func TestSavepointIsNotACommit(t *testing.T) {
	lt := openLive(t, "revcdc_savepoint", "id INT PRIMARY KEY, v INT")
	lt.resumeMidTransaction(t, []string{
		"BEGIN",
		"INSERT INTO " + lt.name + " VALUES (1, 1)",
		"SAVEPOINT revcdc_sp",
		"INSERT INTO " + lt.name + " VALUES (2, 2)",
		"INSERT INTO " + lt.name + " VALUES (3, 3)",
		"COMMIT",
	}, 2, 4, 2)
}
