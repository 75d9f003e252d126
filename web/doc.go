// Package web serves Sluice's HTTP endpoints: health (/healthz, /readyz),
// Prometheus metrics (/metrics), and, when Config.Observer is set, the
// JSON API under /api/v1/ with server-sent events and the dashboard at /.
// When Config.Cluster is set (a clustered pipeline instance, which has no
// Observer), it serves /api/v1/cluster and the dashboard with its cluster
// page; /api/v1/info tells the page which of the two the server has.
//
// The server binds to loopback by default; any other bind address requires
// a bearer token, which every endpoint but the probes (/healthz, /readyz)
// and the dashboard's static files then checks. The dashboard page asks
// for the token and sends it in the Authorization header of its API and
// event requests (it reads events with fetch rather than EventSource for
// that reason). Without a token only local requests are answered: a Host
// that is a loopback name and no Origin of another site
// (netutil.LocalRequest), against DNS rebinding and cross-site requests.
//
// The dashboard's HTML, script and style sheet are embedded in the binary
// (assets/); they load nothing from elsewhere. The page is plain
// JavaScript: routing by URL hash, the dataflow graph and the plots drawn
// as SVG; the cluster page polls /api/v1/cluster every two seconds.
//
// Commands register running stream jobs through JobRegistry
// (Server.Jobs); the figures themselves come from package observe. See
// docs/api.md for the API and docs/observability.md for the whole picture.
package web
