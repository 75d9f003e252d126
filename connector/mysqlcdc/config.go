package mysqlcdc

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Snapshot says whether the source reads the tables' current rows before
// the binary log.
type Snapshot int

const (
	// SnapshotInitial reads every table once, consistently, as "r" rows,
	// then the binlog from the snapshot's position (the default).
	SnapshotInitial Snapshot = iota
	// SnapshotNever starts at the binlog's current end: only changes made
	// after the job first started are captured.
	SnapshotNever
)

// Config configures a Source.
type Config struct {
	// Host, Port, User and Password say where the server is and who to
	// log in as (defaults 127.0.0.1, 3306, root, no password). The user
	// needs SELECT on the tables, REPLICATION SLAVE and REPLICATION
	// CLIENT (and RELOAD on MySQL, for the snapshot's global read lock).
	Host     string
	Port     uint16
	User     string
	Password string
	// Tables are the captured tables as db.table.
	Tables []string
	// ServerID is the replica id the source registers with; it must
	// differ from every server's and replica's id. Zero derives one from
	// Name in 5400..6399 (set it when several pipelines read one server).
	ServerID uint32
	// Name names the source in logs and derives the default ServerID.
	Name string
	// Snapshot: initial (default) or never.
	Snapshot Snapshot
	// ChunkRows is how many rows one snapshot query reads (default
	// 10,000).
	ChunkRows int
	// Logger gets reconnection lines; nil: slog.Default().
	Logger *slog.Logger
	// MaxBackoff bounds the wait between reconnection attempts (default
	// 30 s; the first wait is 100 ms, doubling).
	MaxBackoff time.Duration
}

// ParseDSN fills Host, Port, User and Password from a DSN written as a
// URL, mysql://user:password@host:port/ (a database path is ignored:
// tables name theirs), or as Go's MySQL driver writes it,
// user:password@tcp(host:port)/.
func (c *Config) ParseDSN(dsn string) error {
	if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return fmt.Errorf("dsn: %w", err)
		}
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
		return c.setHostPort(u.Host)
	}
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return errors.New("dsn: want mysql://user:password@host:port/ or user:password@tcp(host:port)/")
	}
	user, rest := dsn[:at], dsn[at+1:]
	c.User, c.Password, _ = strings.Cut(user, ":")
	if !strings.HasPrefix(rest, "tcp(") || !strings.Contains(rest, ")") {
		return errors.New("dsn: want user:password@tcp(host:port)/ (only TCP is supported)")
	}
	return c.setHostPort(rest[4:strings.IndexByte(rest, ')')])
}

func (c *Config) setHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = hp, ""
	}
	c.Host = host
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return fmt.Errorf("dsn: port %q: %w", port, err)
		}
		c.Port = uint16(p)
	}
	return nil
}

func (c *Config) withDefaults() (Config, error) {
	x := *c
	if x.Host == "" {
		x.Host = "127.0.0.1"
	}
	if x.Port == 0 {
		x.Port = 3306
	}
	if x.User == "" {
		x.User = "root"
	}
	if x.ChunkRows <= 0 {
		x.ChunkRows = 10000
	}
	if x.MaxBackoff <= 0 {
		x.MaxBackoff = 30 * time.Second
	}
	if x.Logger == nil {
		x.Logger = slog.Default()
	}
	if x.ServerID == 0 {
		x.ServerID = 5400 + crc32.ChecksumIEEE([]byte(x.Name))%1000
	}
	if len(x.Tables) == 0 {
		return x, errors.New("mysql_cdc: no tables: name at least one as db.table")
	}
	seen := map[string]bool{}
	for _, t := range x.Tables {
		db, name, ok := strings.Cut(t, ".")
		if !ok || db == "" || name == "" || strings.Contains(name, ".") {
			return x, fmt.Errorf("mysql_cdc: table %q: want db.table", t)
		}
		if seen[t] {
			return x, fmt.Errorf("mysql_cdc: table %q named twice", t)
		}
		seen[t] = true
	}
	return x, nil
}

func (c *Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) }
