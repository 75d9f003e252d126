package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/internal/testcerts"
	sluicekafka "github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/stream"
)

// secureKafka is Sluice's Kafka listener with a SASL_SSL listener (TLS
// from a throwaway CA, SCRAM-SHA-256/512 and PLAIN) beside the PLAINTEXT
// one the test administers through, and user alice.
type secureKafka struct {
	srv    *kafkatest.Server
	certs  *testcerts.Set
	addr   string // the SASL_SSL listener
	passwd string // alice's password
}

func startSecureKafka(t *testing.T, topics map[string]int32) *secureKafka {
	t.Helper()
	certs, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := certs.ServerTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sluicekafka.DefaultConfig()
	cfg.TLS = srvTLS
	cfg.AutoCreateTopics = false
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, Listeners: []sluicekafka.Listener{{Name: "SASL_SSL", Protocol: sluicekafka.SASLSSL}}})
	sk := &secureKafka{srv: s, certs: certs, addr: s.Addrs["SASL_SSL"], passwd: "alice-s3cret-pw"}
	ctx := context.Background()
	adm := kadm.NewClient(s.Client(t))
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: m, Iterations: 4096, Password: sk.passwd}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("create user alice (%v): %v", m, err)
		}
	}
	for tp, n := range topics {
		res, err := adm.CreateTopic(ctx, n, 1, nil, tp)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", tp, err)
		}
	}
	return sk
}

// client is a franz-go client authenticated as alice over SASL_SSL.
func (k *secureKafka) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	tc, err := k.certs.ClientTLS("", "")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.addr), kgo.DialTLSConfig(tc),
		kgo.SASL(scram.Auth{User: "alice", Pass: k.passwd}.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readCommitted reads topic from the start with read_committed up to its
// end (transaction markers included), returning the values in each
// partition's order, and fails on a record not written transactionally.
func (k *secureKafka) readCommitted(t *testing.T, ctx context.Context, topic string) []string {
	t.Helper()
	ends, err := kadm.NewClient(k.client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	rd := k.client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	var got []string
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v; got %q, partitions left %v", topic, ctx.Err(), got, left)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if !r.Attrs.IsTransactional() {
				t.Errorf("record %s was not written in a transaction (delivery: exactly_once)", r.Value)
			}
			got = append(got, string(r.Value))
		})
	}
	return got
}

const saslSpec = `name: secure-orders
source:
  kafka:
    brokers: ["BROKER"]
    topic: orders
    bounded: true
SOURCE_SECURITY
steps:
  - filter: qty > 0
  - map: {id: id, total: price * qty}
sink:
  kafka:
    brokers: ["BROKER"]
    topic: totals
SINK_SECURITY
parallelism: 2
delivery: exactly_once
checkpoint: {interval: 100ms, dir: CKPT}
`

// pipelineSpec fills saslSpec in; the security blocks are indented into
// the kafka blocks.
func pipelineSpec(broker, ckpt, source, sink string) string {
	indent := func(s string) string {
		if s == "" {
			return ""
		}
		return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
	}
	return strings.NewReplacer("BROKER", broker, "CKPT", ckpt, "SOURCE_SECURITY\n", indent(source)+"\n",
		"SINK_SECURITY\n", indent(sink)+"\n").Replace(saslSpec)
}

// runSecure parses spec and runs it to its end.
func runSecure(t *testing.T, spec string, host *Host) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Parse("secure.yaml", []byte(spec))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, spec)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(ctx, host)
	if err != nil {
		return err
	}
	return j.Wait()
}

// TestKafkaSASLSSLExactlyOnce runs a pipeline whose Kafka source and sink
// authenticate with SCRAM over TLS (SASL_SSL) to Sluice's listener, under
// exactly_once: the output, read with read_committed, is exactly the
// expected records, each once, all written in transactions; the listener
// saw alice. The settings come from the spec's kafka blocks (the run's
// defaults, deliberately wrong, do not apply to them), or from the run's
// defaults (Host.KafkaDefaults, as `sluice run --principal` sets them).
func TestKafkaSASLSSLExactlyOnce(t *testing.T) {
	wrongDefaults := &KafkaSecurity{Protocol: KafkaSASLSSL, SASL: &KafkaSASL{Mechanism: MechScramSHA512, Username: "alice", Password: "not-the-password"}}
	for _, c := range []struct {
		name         string
		source, sink string
		defaults     func(k *secureKafka) *KafkaSecurity
	}{
		{
			name: "spec",
			source: `security_protocol: SASL_SSL
sasl: {mechanism: SCRAM-SHA-512, username: alice, password_file: PWFILE}
tls: {ca_file: CAFILE}`,
			sink: `sasl: {mechanism: SCRAM-SHA-256, username: alice, password_env: SLUICE_TEST_KAFKA_PASSWORD}
tls: {ca_file: CAFILE, server_name: localhost}`,
			defaults: func(*secureKafka) *KafkaSecurity { return wrongDefaults },
		},
		{
			name: "run-defaults",
			defaults: func(k *secureKafka) *KafkaSecurity {
				return &KafkaSecurity{SASL: &KafkaSASL{Mechanism: MechScramSHA512, Username: "alice", Password: Secret(k.passwd)},
					TLS: &KafkaTLS{CAFile: k.certs.CAFile}}
			},
		},
		{
			name:   "plain-mechanism",
			source: `sasl: {mechanism: PLAIN, username: alice, password_env: SLUICE_TEST_KAFKA_PASSWORD}` + "\n" + `tls: {ca_file: CAFILE}`,
			defaults: func(k *secureKafka) *KafkaSecurity {
				return &KafkaSecurity{Protocol: KafkaSASLSSL, SASL: &KafkaSASL{Mechanism: MechScramSHA256, Username: "alice", Password: Secret(k.passwd)},
					TLS: &KafkaTLS{CAFile: k.certs.CAFile}}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := startSecureKafka(t, map[string]int32{"orders": 3, "totals": 2})
			dir := t.TempDir()
			pwFile := filepath.Join(dir, "password")
			if err := os.WriteFile(pwFile, []byte(k.passwd+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("SLUICE_TEST_KAFKA_PASSWORD", k.passwd)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			prod := k.client(t, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			var want []string
			for i := range 300 {
				qty := i % 4 // a quarter are filtered out
				r := &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"price":%d,"qty":%d}`, i, i%7+1, qty)}
				if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce as alice: %v", err)
				}
				if qty > 0 {
					want = append(want, fmt.Sprintf(`{"id":%d,"total":%d}`, i, (i%7+1)*qty))
				}
			}
			fill := strings.NewReplacer("PWFILE", pwFile, "CAFILE", k.certs.CAFile)
			spec := pipelineSpec(k.addr, filepath.Join(dir, "ckpt"), fill.Replace(c.source), fill.Replace(c.sink))
			if err := runSecure(t, spec, &Host{KafkaDefaults: c.defaults(k)}); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			got := k.readCommitted(t, ctx, "totals")
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("output (%d records) differs from the expected (%d records):\ngot  %q\nwant %q", len(got), len(want), got, want)
			}
			if p := k.srv.Kafka.Principals(); !slices.Contains(p, "User:alice") {
				t.Fatalf("principals seen: %v, want User:alice", p)
			}
		})
	}
}

// TestKafkaSASLWrongPassword: a wrong password, in the spec or in the
// run's defaults, on the source or on the sink, fails the pipeline with an
// authentication error that does not contain the password.
func TestKafkaSASLWrongPassword(t *testing.T) {
	k := startSecureKafka(t, map[string]int32{"orders": 1, "totals": 1})
	prod := k.client(t, kgo.DefaultProduceTopic("orders"))
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"id":1,"price":2,"qty":3}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const wrong = "Wr0ng-Pa55word"
	good := fmt.Sprintf("sasl: {username: alice, password: %q}\ntls: {ca_file: %s}", k.passwd, k.certs.CAFile)
	bad := fmt.Sprintf("sasl: {username: alice, password: %q}\ntls: {ca_file: %s}", wrong, k.certs.CAFile)
	badDefaults := &KafkaSecurity{SASL: &KafkaSASL{Username: "alice", Password: wrong}, TLS: &KafkaTLS{CAFile: k.certs.CAFile}}
	for _, c := range []struct {
		name, source, sink string
		defaults           *KafkaSecurity
	}{
		{name: "source", source: bad, sink: good},
		{name: "sink", source: good, sink: bad},
		{name: "run-defaults", defaults: badDefaults},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := pipelineSpec(k.addr, filepath.Join(t.TempDir(), "ckpt"), c.source, c.sink)
			err := runSecure(t, spec, &Host{KafkaDefaults: c.defaults})
			if err == nil {
				t.Fatal("the pipeline ran with a wrong password")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, "SASL_AUTHENTICATION_FAILED") {
				t.Errorf("error %q does not say that authentication failed", msg)
			}
			if strings.Contains(msg, wrong) || strings.Contains(msg, k.passwd) {
				t.Errorf("error %q contains a password", msg)
			}
		})
	}
}

// TestKafkaSecuritySettingsErrors: files and environment variables are
// read when the pipeline starts; their errors name the spec's file, line
// and key (or the run's flag), never the password.
func TestKafkaSecuritySettingsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, source string
		defaults     *KafkaSecurity
		want         string
	}{
		{name: "password-file", source: "sasl: {username: alice, password_file: " + filepath.Join(dir, "missing") + "}",
			want: "secure.yaml:7:44: source.kafka.sasl.password_file: open "},
		{name: "password-env", source: "sasl: {username: alice, password_env: SLUICE_TEST_UNSET_PASSWORD}",
			want: "secure.yaml:7:43: source.kafka.sasl.password_env: environment variable SLUICE_TEST_UNSET_PASSWORD is not set or empty"},
		{name: "ca-file", source: "security_protocol: SSL\ntls: {ca_file: " + notPEM + "}",
			want: "secure.yaml:8:20: source.kafka.tls.ca_file: " + notPEM + ": no PEM certificate in it"},
		{name: "run-default-ca", defaults: &KafkaSecurity{Protocol: KafkaSSL, TLS: &KafkaTLS{CAFile: filepath.Join(dir, "nope.pem")}},
			want: "secure.yaml: source: --tls-ca: open "},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := runSecure(t, pipelineSpec("127.0.0.1:1", filepath.Join(dir, "ckpt"), c.source, ""), &Host{KafkaDefaults: c.defaults})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v; want it to start with %q", err, c.want)
			}
		})
	}
}

// TestKafkaSecretsNotPrinted: a spec's password never appears in spec
// errors or in printed settings.
func TestKafkaSecretsNotPrinted(t *testing.T) {
	const pw = "hunter2-do-not-echo"
	bad := `source:
  kafka: {brokers: [b], topic: t, security_protocol: SASL_PLAINTEXT, sasl: {username: alice, password: ` + pw + `, password_env: X}, sasl_extra: ` + pw + `}
sink: {kafka: {brokers: [b], topic: u, sasl: {password: {x: ` + pw + `}}}}
`
	if _, err := Parse("s.yaml", []byte(bad)); err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("spec error %v contains the password (or there is none)", err)
	}
	good := `source:
  kafka: {brokers: [b], topic: t, sasl: {username: alice, password: ` + pw + `}}
sink: {stdout: {}}
`
	s, err := Parse("s.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	sec := s.Source.cfg.(*kafkaSourceConfig).sec
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("settings", "sasl", sec.SASL, "password", sec.SASL.Password)
	js, _ := json.Marshal(sec)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %q", sec.SASL, sec.SASL, *sec.SASL, sec.SASL.Password, sec.SASL.Password), logged.String(), string(js)} {
		if strings.Contains(out, pw) {
			t.Fatalf("printed settings contain the password: %s", out)
		}
	}
	if string(sec.SASL.Password) != pw {
		t.Fatalf("password %q not kept", string(sec.SASL.Password))
	}
}

// waitCommitted reads topic with read_committed from the start until it
// has seen n records (it blocks in the fetch; no sleeping).
func (k *secureKafka) waitCommitted(t *testing.T, ctx context.Context, topic string, n int) {
	t.Helper()
	rd := k.client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer rd.Close()
	seen := 0
	for seen < n {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("waiting for %d committed records in %s: %v (saw %d)", n, topic, ctx.Err(), seen)
		}
		seen += fs.NumRecords()
	}
}

// TestKafkaSASLSSLExactlyOnceResume: an unbounded SASL_SSL pipeline under
// exactly_once stops with a savepoint once its output of a first batch
// is committed, and a second run (restoring that savepoint, its sink
// recovering its transactions through SASL_SSL clients) processes a
// second batch: the read_committed output is every expected record
// exactly once.
func TestKafkaSASLSSLExactlyOnceResume(t *testing.T) {
	k := startSecureKafka(t, map[string]int32{"orders": 2, "totals": 2})
	dir := t.TempDir()
	t.Setenv("SLUICE_TEST_KAFKA_PASSWORD", k.passwd)
	sec := "sasl: {username: alice, password_env: SLUICE_TEST_KAFKA_PASSWORD}\ntls: {ca_file: " + k.certs.CAFile + "}"
	spec := strings.Replace(pipelineSpec(k.addr, filepath.Join(dir, "ckpt"), sec, sec), "bounded: true", "bounded: false", 1)
	s, err := Parse("resume.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	prod := k.client(t, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var want []string
	next := 0
	for run := range 2 {
		for range 100 {
			i := next
			next++
			qty := i%3 + 1
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"price":2,"qty":%d}`, i, qty)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf(`{"id":%d,"total":%d}`, i, 2*qty))
		}
		j, err := p.Start(ctx, &Host{}, WithStreamOptions(stream.WithCheckpointTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		k.waitCommitted(t, ctx, "totals", len(want))
		if _, err := j.StopWithSavepoint(ctx); err != nil {
			t.Fatalf("run %d: savepoint: %v", run, err)
		}
		if err := j.Wait(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	got := k.readCommitted(t, ctx, "totals")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output (%d records) differs from the expected (%d records):\ngot  %q\nwant %q", len(got), len(want), got, want)
	}
}
