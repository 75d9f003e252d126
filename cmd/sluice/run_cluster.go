package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/web"
)

// clusterRun is what `sluice run` passes to cluster mode.
type clusterRun struct {
	brokers    []string
	instanceID string
	httpAddr   string
	httpToken  string
	dataDir    string
	kafka      *pipeline.KafkaSecurity
	auth       *runAuthFlags
}

// runCluster runs one instance of a clustered pipeline (a spec with a
// cluster section) until it is interrupted: SIGINT/SIGTERM closes the
// current transaction, leaves the group and returns.
func runCluster(ctx context.Context, c *cli, plan *pipeline.Plan, file string, r clusterRun, logger *slog.Logger) error {
	host := &pipeline.Host{DataDir: r.dataDir, Stdout: c.stdout, Logger: logger, KafkaDefaults: r.kafka}
	cp, err := plan.Cluster(ctx, host, pipeline.ClusterOverrides{Brokers: r.brokers, InstanceID: r.instanceID})
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	inst, err := cluster.New(nctx, cp.Config, cp.Topology)
	cancel()
	if err != nil {
		return r.auth.authHint(err)
	}
	ingestErr := make(chan error, 1)
	if cp.Ingest != nil {
		// The HTTP source runs on every instance, writing into the ingest
		// topic; it stops (unanswered requests are retried by clients)
		// when the instance stops.
		ictx, icancel := context.WithCancel(context.WithoutCancel(ctx))
		ingest, err := cp.Ingest(ictx)
		if err != nil {
			icancel()
			return err
		}
		defer func() {
			icancel()
			_ = ingest.Wait()
		}()
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		go func() {
			select {
			case <-ingest.Done():
				if err := ingest.Wait(); err != nil && ictx.Err() == nil {
					logger.Error("the HTTP ingest stopped; stopping the instance", "err", err)
					ingestErr <- fmt.Errorf("pipeline %s: http ingest: %w", plan.Spec.Name, err)
				}
				stop()
			case <-ctx.Done():
			}
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), inst.Collector())
	if r.httpAddr != "" {
		cfg := web.Config{Addr: r.httpAddr, Token: r.httpToken, Gatherer: reg, Cluster: inst.Status, Ready: inst.Ready}
		if err := serveHTTP(ctx, cfg, logger, "dashboard, /metrics and /api/v1/cluster", "/#/cluster"); err != nil {
			return err
		}
	}
	st := inst.Status(ctx)
	logger.Info("cluster instance running", "pipeline", plan.Spec.Name, "file", file, "application", st.Application,
		"instance", st.Instance, "topics", strings.Join(st.Topics, ","), "delivery", plan.Spec.Delivery)
	if err := inst.Run(ctx); err != nil {
		return fmt.Errorf("pipeline %s: %w", plan.Spec.Name, r.auth.authHint(err))
	}
	select {
	case err := <-ingestErr:
		return err
	default:
	}
	logger.Info("cluster instance stopped", "pipeline", plan.Spec.Name, "instance", st.Instance)
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
