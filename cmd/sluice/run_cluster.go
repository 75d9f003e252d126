package main

import (
	"context"
	"errors"
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
	cfg, topo, err := plan.ClusterTopology(ctx, host, pipeline.ClusterOverrides{Brokers: r.brokers, InstanceID: r.instanceID})
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	inst, err := cluster.New(nctx, cfg, topo)
	cancel()
	if err != nil {
		return r.auth.authHint(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), inst.Collector())
	if r.httpAddr != "" {
		w, err := web.New(web.Config{Addr: r.httpAddr, Token: r.httpToken, Gatherer: reg, Cluster: inst.Status}, logger)
		if err != nil {
			return usagef("%v", err)
		}
		ln, err := w.Listen()
		if err != nil {
			return err
		}
		go func() {
			if err := w.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("http server", "err", err)
			}
		}()
		logger.Info("dashboard, /metrics and /api/v1/cluster served", "url", "http://"+ln.Addr().String()+"/#/cluster")
	}
	st := inst.Status(ctx)
	logger.Info("cluster instance running", "pipeline", plan.Spec.Name, "file", file, "application", st.Application,
		"instance", st.Instance, "topics", strings.Join(st.Topics, ","), "delivery", plan.Spec.Delivery)
	if err := inst.Run(ctx); err != nil {
		return fmt.Errorf("pipeline %s: %w", plan.Spec.Name, r.auth.authHint(err))
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
