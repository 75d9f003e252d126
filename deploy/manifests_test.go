package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/pipeline"
)

// recommendedMetric is the gauge the cluster exports for autoscaling.
const recommendedMetric = "sluice_cluster_recommended_instances"

// manifest is one YAML document of deploy/kubernetes.
type manifest struct {
	file string
	doc  *yaml.Node
	head header
}

type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
}

// loadManifests parses every YAML document under kubernetes/ and fails
// the test on a file that is not valid YAML or a document without
// apiVersion, kind and (but for kustomizations) metadata.name.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s: not valid YAML: %v", path, err)
				break
			}
			m := manifest{file: path, doc: &doc}
			if err := doc.Decode(&m.head); err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if m.head.APIVersion == "" || m.head.Kind == "" {
				t.Errorf("%s: a document without apiVersion or kind", path)
			}
			if m.head.Kind != "Kustomization" && m.head.Metadata.Name == "" {
				t.Errorf("%s: %s without metadata.name", path, m.head.Kind)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no manifests found under kubernetes/")
	}
	return out
}

// one decodes the only manifest of kind into v, failing if there is not
// exactly one.
func one(t *testing.T, ms []manifest, kind string, v any) manifest {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.head.Kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, found %d", kind, len(found))
	}
	if err := found[0].doc.Decode(v); err != nil {
		t.Fatalf("%s: %v", found[0].file, err)
	}
	return found[0]
}

type statefulSet struct {
	Spec struct {
		ServiceName string `yaml:"serviceName"`
		Template    struct {
			Spec struct {
				TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []header `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type container struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// flag returns the value of --name in args (as --name=V or --name V).
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// mountOf returns the volume mounted at dir.
func (c container) mountOf(dir string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return m.Name
		}
	}
	return ""
}

func TestStatefulSet(t *testing.T) {
	ms := loadManifests(t)
	var ss statefulSet
	m := one(t, ms, "StatefulSet", &ss)
	spec := ss.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", m.file, len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "run" {
		t.Fatalf("%s: the container runs %q, want sluice run", m.file, c.Args)
	}
	env := map[string]string{} // variable -> field path or secret/key
	for _, e := range c.Env {
		if p := e.ValueFrom.FieldRef.FieldPath; p != "" {
			env[e.Name] = p
		}
		if r := e.ValueFrom.SecretKeyRef; r.Name != "" {
			env[e.Name] = "secret:" + r.Name + "/" + r.Key
		}
	}

	// Static membership: the instance id is the pod's name.
	id, ok := flag(c.Args, "instance-id")
	if !ok {
		t.Fatalf("%s: no --instance-id in %q", m.file, c.Args)
	}
	v, ok := strings.CutPrefix(id, "$(")
	v, ok2 := strings.CutSuffix(v, ")")
	if !ok || !ok2 || env[v] != "metadata.name" {
		t.Errorf("%s: --instance-id=%s is not a variable set from metadata.name (env: %v)", m.file, id, env)
	}

	// The local state cache is on the pod's own volume.
	dir, ok := flag(c.Args, "data-dir")
	if !ok {
		t.Errorf("%s: no --data-dir in %q", m.file, c.Args)
	}
	vol := c.mountOf(dir)
	if !slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(h header) bool { return h.Metadata.Name == vol }) {
		t.Errorf("%s: --data-dir %s is not on a volumeClaimTemplate (mounted volume %q)", m.file, dir, vol)
	}

	// A non-loopback HTTP address needs the token, from the Secret.
	if addr, _ := flag(c.Args, "http-addr"); !strings.HasPrefix(addr, "0.0.0.0:") {
		t.Errorf("%s: --http-addr %q, want 0.0.0.0:PORT for probes and scrapes", m.file, addr)
	}
	tok := env["SLUICE_HTTP_TOKEN"]
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	sm := one(t, ms, "Secret", &secret)
	if _, ok := secret.StringData["token"]; !ok || tok != "secret:"+sm.head.Metadata.Name+"/token" {
		t.Errorf("SLUICE_HTTP_TOKEN comes from %q; want the token key of Secret %s (%s)", tok, sm.head.Metadata.Name, sm.file)
	}

	if p := c.ReadinessProbe.HTTPGet.Path; p != "/readyz" {
		t.Errorf("%s: readiness probe on %q, want /readyz", m.file, p)
	}
	// sluice run gives a savepoint up to a minute on SIGTERM.
	if g := spec.TerminationGracePeriodSeconds; g < 60 {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want at least 60", m.file, g)
	}

	// The pipeline file is in the ConfigMap mounted where args name it.
	file := c.Args[len(c.Args)-1]
	var cm configMap
	cmm := one(t, ms, "ConfigMap", &cm)
	mounted := false
	for _, v := range spec.Volumes {
		if v.Name == c.mountOf(filepath.Dir(file)) && v.ConfigMap != nil && v.ConfigMap.Name == cmm.head.Metadata.Name {
			mounted = true
		}
	}
	if _, ok := cm.Data[filepath.Base(file)]; !ok || !mounted {
		t.Errorf("%s: the pipeline %s is not a key of ConfigMap %s mounted at %s", m.file, file, cmm.head.Metadata.Name, filepath.Dir(file))
	}

	var svc struct {
		Spec struct {
			ClusterIP string `yaml:"clusterIP"`
		} `yaml:"spec"`
	}
	svm := one(t, ms, "Service", &svc)
	if ss.Spec.ServiceName != svm.head.Metadata.Name || svc.Spec.ClusterIP != "None" {
		t.Errorf("serviceName %q: want the headless Service %s (%s)", ss.Spec.ServiceName, svm.head.Metadata.Name, svm.file)
	}
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

type clusterSection struct {
	Brokers       []string `yaml:"brokers"`
	ApplicationID string   `yaml:"application_id"`
}

// examplePipeline returns the ConfigMap's pipeline text and its cluster
// section.
func examplePipeline(t *testing.T, ms []manifest) (string, clusterSection) {
	t.Helper()
	var cm configMap
	m := one(t, ms, "ConfigMap", &cm)
	text, ok := cm.Data["pipeline.yaml"]
	if !ok {
		t.Fatalf("%s: no pipeline.yaml key", m.file)
	}
	var spec struct {
		Cluster clusterSection `yaml:"cluster"`
	}
	if err := yaml.Unmarshal([]byte(text), &spec); err != nil {
		t.Fatalf("%s: the pipeline is not valid YAML: %v", m.file, err)
	}
	if len(spec.Cluster.Brokers) == 0 || spec.Cluster.ApplicationID == "" {
		t.Fatalf("%s: the pipeline's cluster section needs brokers and application_id, got %+v", m.file, spec.Cluster)
	}
	return text, spec.Cluster
}

// TestExamplePipeline checks the ConfigMap's pipeline as sluice run does
// in cluster mode: it parses, compiles and plans onto cluster mode.
func TestExamplePipeline(t *testing.T) {
	text, _ := examplePipeline(t, loadManifests(t))
	spec, err := pipeline.Parse("configmap pipeline.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the example pipeline:\n%v", err)
	}
	plan, err := pipeline.Compile(spec)
	if err != nil {
		t.Fatalf("the example pipeline:\n%v", err)
	}
	if spec.Cluster == nil {
		t.Fatal("the example pipeline has no cluster section")
	}
	if _, err := plan.Cluster(context.Background(), nil, pipeline.ClusterOverrides{InstanceID: "sluice-0"}); err != nil {
		t.Fatalf("the example pipeline does not plan onto cluster mode:\n%v", err)
	}
}

type scaleTarget struct {
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
}

// TestAutoscalers checks that the HPA and the KEDA ScaledObject scale the
// StatefulSet to the recommended instance count of the pipeline's
// application.
func TestAutoscalers(t *testing.T) {
	ms := loadManifests(t)
	_, cluster := examplePipeline(t, ms)
	var ss statefulSet
	ssm := one(t, ms, "StatefulSet", &ss)
	want := scaleTarget{Kind: "StatefulSet", Name: ssm.head.Metadata.Name}

	var hpa struct {
		Spec struct {
			ScaleTargetRef scaleTarget `yaml:"scaleTargetRef"`
			MinReplicas    int         `yaml:"minReplicas"`
			Metrics        []struct {
				Type     string `yaml:"type"`
				External struct {
					Metric struct {
						Name     string `yaml:"name"`
						Selector struct {
							MatchLabels map[string]string `yaml:"matchLabels"`
						} `yaml:"selector"`
					} `yaml:"metric"`
					Target struct {
						Type         string `yaml:"type"`
						AverageValue string `yaml:"averageValue"`
					} `yaml:"target"`
				} `yaml:"external"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	hm := one(t, ms, "HorizontalPodAutoscaler", &hpa)
	if hm.head.APIVersion != "autoscaling/v2" {
		t.Errorf("%s: apiVersion %s, want autoscaling/v2", hm.file, hm.head.APIVersion)
	}
	if hpa.Spec.ScaleTargetRef != want || hpa.Spec.MinReplicas < 1 {
		t.Errorf("%s: scales %+v from %d, want %+v from at least 1", hm.file, hpa.Spec.ScaleTargetRef, hpa.Spec.MinReplicas, want)
	}
	if len(hpa.Spec.Metrics) != 1 {
		t.Fatalf("%s: want one metric, got %d", hm.file, len(hpa.Spec.Metrics))
	}
	em := hpa.Spec.Metrics[0]
	// An absolute count: External with AverageValue 1 gives replicas = value.
	if em.Type != "External" || em.External.Metric.Name != recommendedMetric ||
		em.External.Target.Type != "AverageValue" || em.External.Target.AverageValue != "1" {
		t.Errorf("%s: metric %+v, want External %s with an AverageValue target of 1", hm.file, em, recommendedMetric)
	}
	if app := em.External.Metric.Selector.MatchLabels["application"]; app != cluster.ApplicationID {
		t.Errorf("%s: selects application %q, the pipeline's application_id is %q", hm.file, app, cluster.ApplicationID)
	}

	var so struct {
		Spec struct {
			ScaleTargetRef  scaleTarget `yaml:"scaleTargetRef"`
			MinReplicaCount int         `yaml:"minReplicaCount"`
			Triggers        []struct {
				Type       string            `yaml:"type"`
				MetricType string            `yaml:"metricType"`
				Metadata   map[string]string `yaml:"metadata"`
			} `yaml:"triggers"`
		} `yaml:"spec"`
	}
	km := one(t, ms, "ScaledObject", &so)
	if so.Spec.ScaleTargetRef != want || so.Spec.MinReplicaCount < 1 {
		t.Errorf("%s: scales %+v from %d, want %+v from at least 1", km.file, so.Spec.ScaleTargetRef, so.Spec.MinReplicaCount, want)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "prometheus" {
		t.Fatalf("%s: want one prometheus trigger, got %+v", km.file, so.Spec.Triggers)
	}
	tr := so.Spec.Triggers[0]
	query := regexp.MustCompile(`^max\(` + recommendedMetric + `\{application="([^"]*)"\}\)$`)
	q := query.FindStringSubmatch(tr.Metadata["query"])
	if q == nil || q[1] != cluster.ApplicationID {
		t.Errorf("%s: query %q, want max(%s{application=%q})", km.file, tr.Metadata["query"], recommendedMetric, cluster.ApplicationID)
	}
	if tr.MetricType != "AverageValue" || tr.Metadata["threshold"] != "1" {
		t.Errorf("%s: metricType %q threshold %q, want AverageValue and 1", km.file, tr.MetricType, tr.Metadata["threshold"])
	}
}

// TestKustomizations checks that every resource a kustomization lists
// exists, and that the top-level one does not apply both autoscalers.
func TestKustomizations(t *testing.T) {
	ms := loadManifests(t)
	var kinds []string
	for _, m := range ms {
		if m.head.Kind != "Kustomization" {
			continue
		}
		var k struct {
			Resources []string `yaml:"resources"`
		}
		if err := m.doc.Decode(&k); err != nil {
			t.Fatalf("%s: %v", m.file, err)
		}
		for _, r := range k.Resources {
			p := filepath.Join(filepath.Dir(m.file), r)
			st, err := os.Stat(p)
			if err == nil && st.IsDir() {
				_, err = os.Stat(filepath.Join(p, "kustomization.yaml"))
			}
			if err != nil {
				t.Errorf("%s: resource %s: %v", m.file, r, err)
			}
		}
		if m.file == filepath.Join("kubernetes", "kustomization.yaml") {
			kinds = kustomizedKinds(t, m.file)
		}
	}
	if !slices.Contains(kinds, "HorizontalPodAutoscaler") || slices.Contains(kinds, "ScaledObject") {
		t.Errorf("kubernetes/kustomization.yaml applies %v; want the HPA and not the KEDA ScaledObject", kinds)
	}
}

// kustomizedKinds lists the kinds a kustomization applies, following its
// resources into files and directories.
func kustomizedKinds(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var kinds []string
	for _, r := range k.Resources {
		p := filepath.Join(filepath.Dir(file), r)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			kinds = append(kinds, kustomizedKinds(t, filepath.Join(p, "kustomization.yaml"))...)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var h header
		if err := yaml.Unmarshal(data, &h); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		kinds = append(kinds, h.Kind)
	}
	return kinds
}

// TestDockerfile checks that the image is built static with go.mod's Go
// version and runs sluice as a non-root user.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goDirective := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	goVersion := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(df)
	if goDirective == nil || goVersion == nil || string(goVersion[1]) != string(goDirective[1]) {
		t.Errorf("Dockerfile's GO_VERSION %q differs from go.mod's go %q", goVersion, goDirective)
	}
	for _, want := range []string{
		"CGO_ENABLED=0",
		`go build -trimpath -ldflags "-s -w"`,
		"\nUSER 65532:65532\n",
		"\nENTRYPOINT [\"/usr/local/bin/sluice\"]\n",
	} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
