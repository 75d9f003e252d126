package mysqlcdc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// serverInfo is what the source needs to know about the server.
type serverInfo struct {
	flavor   string // mysql.MariaDBFlavor or mysql.MySQLFlavor
	serverID uint32
}

func readServer(c *client.Conn) (serverInfo, error) {
	var si serverInfo
	r, err := c.Execute("SELECT VERSION(), @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image")
	if err != nil {
		return si, fmt.Errorf("read server settings: %w", err)
	}
	version, _ := r.GetString(0, 0)
	id, _ := r.GetUint(0, 1)
	logBin, _ := r.GetString(0, 2)
	format, _ := r.GetString(0, 3)
	image, _ := r.GetString(0, 4)
	si.serverID = uint32(id)
	si.flavor = mysql.MySQLFlavor
	if strings.Contains(strings.ToLower(version), "mariadb") {
		si.flavor = mysql.MariaDBFlavor
	}
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		return si, fatal(errors.New("mysql_cdc: the server's binary log is off: start it with log_bin (and binlog_format=ROW, binlog_row_image=FULL); see docs/connectors.md"))
	}
	if !strings.EqualFold(format, "ROW") {
		return si, fatal(fmt.Errorf("mysql_cdc: the server's binlog_format is %s: change data capture needs ROW (SET GLOBAL binlog_format = 'ROW', and in the server's configuration)", format))
	}
	if !strings.EqualFold(image, "FULL") {
		return si, fatal(fmt.Errorf("mysql_cdc: the server's binlog_row_image is %s: change data capture needs FULL (updates and deletes must carry whole rows)", image))
	}
	return si, nil
}

// head returns the binlog's current end and the GTID set executed there
// ("" when the server writes no GTIDs).
func (si serverInfo) head(c *client.Conn) (binlogPos, string, error) {
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 renamed it.
		if r, err = c.Execute("SHOW BINARY LOG STATUS"); err != nil {
			return binlogPos{}, "", fmt.Errorf("read the binlog position: %w", err)
		}
	}
	if r.RowNumber() == 0 {
		return binlogPos{}, "", fatal(errors.New("mysql_cdc: SHOW MASTER STATUS is empty: the binary log is off or the user lacks REPLICATION CLIENT"))
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	p := binlogPos{File: file, Pos: uint32(pos)}
	if si.flavor == mysql.MariaDBFlavor {
		g, err := si.gtidAt(c, p)
		return p, g, err
	}
	g := ""
	if len(r.Fields) >= 5 {
		g, _ = r.GetString(0, 4)
	}
	return p, strings.ReplaceAll(g, "\n", ""), nil
}

// checkFilters fails when the server's binary log leaves out changes of a
// captured table's database (binlog_do_db, binlog_ignore_db): they would
// be missing from the stream without a sign.
func checkFilters(c *client.Conn, tables []string) error {
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		if r, err = c.Execute("SHOW BINARY LOG STATUS"); err != nil {
			return nil // not allowed to look (no REPLICATION CLIENT): the check is a courtesy
		}
	}
	if r.RowNumber() == 0 || len(r.Fields) < 4 {
		return nil
	}
	do, _ := r.GetString(0, 2)
	ignore, _ := r.GetString(0, 3)
	for _, t := range tables {
		db, _, _ := strings.Cut(t, ".")
		if !logged(db, do, ignore) {
			return fatal(fmt.Errorf("mysql_cdc: the server's binary log leaves out database %s (binlog_do_db %q, binlog_ignore_db %q): the changes of %s would be missed; change the server's binlog filters", db, do, ignore, t))
		}
	}
	return nil
}

// logged reports whether a database's changes are in a binary log with
// the filters do and ignore (comma-separated lists, as SHOW MASTER
// STATUS prints them): when do names databases only those are logged,
// else every database ignore does not name.
func logged(db, do, ignore string) bool {
	in := func(list string) bool {
		for _, d := range strings.Split(list, ",") {
			if strings.TrimSpace(d) == db {
				return true
			}
		}
		return false
	}
	if strings.TrimSpace(do) != "" {
		return in(do)
	}
	return !in(ignore)
}

// gtidAt is MariaDB's GTID position at a binlog position.
func (si serverInfo) gtidAt(c *client.Conn, p binlogPos) (string, error) {
	r, err := c.Execute("SELECT IFNULL(BINLOG_GTID_POS(?, ?), '')", p.File, p.Pos)
	if err != nil {
		return "", fmt.Errorf("read the GTID position at %s:%d: %w", p.File, p.Pos, err)
	}
	g, _ := r.GetString(0, 0)
	return g, nil
}

// beginSnapshot starts a consistent-snapshot transaction on c and
// returns the binlog position (and GTID set) it corresponds to. MariaDB
// reports that position with the transaction (binlog_snapshot_file and
// _position), so no lock is taken; MySQL holds a global read lock for
// the instant between starting the transaction and reading the position.
func (si serverInfo) beginSnapshot(c *client.Conn) (binlogPos, string, error) {
	exec := func(q string) error {
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("snapshot: %s: %w", q, err)
		}
		return nil
	}
	if err := exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return binlogPos{}, "", err
	}
	if si.flavor == mysql.MariaDBFlavor {
		if err := exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			return binlogPos{}, "", err
		}
		r, err := c.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return binlogPos{}, "", fmt.Errorf("snapshot: read its binlog position: %w", err)
		}
		var p binlogPos
		for i := range r.RowNumber() {
			k, _ := r.GetString(i, 0)
			v, _ := r.GetString(i, 1)
			switch strings.ToLower(k) {
			case "binlog_snapshot_file":
				p.File = v
			case "binlog_snapshot_position":
				var n uint32
				fmt.Sscan(v, &n)
				p.Pos = n
			}
		}
		if p.File == "" {
			return p, "", fatal(errors.New("mysql_cdc: the server reports no binlog_snapshot_file: is the binary log on?"))
		}
		g, err := si.gtidAt(c, p)
		return p, g, err
	}
	if err := exec("FLUSH TABLES WITH READ LOCK"); err != nil {
		return binlogPos{}, "", err
	}
	unlock := func() { _, _ = c.Execute("UNLOCK TABLES") }
	if err := exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		unlock()
		return binlogPos{}, "", err
	}
	p, g, err := si.head(c)
	unlock()
	return p, g, err
}
