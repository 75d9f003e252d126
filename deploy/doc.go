// Package deploy holds what runs Sluice in containers: the image's
// Dockerfile and the Kubernetes manifests of a cluster-mode pipeline
// (kubernetes/, applied with kustomize). It has no Go API; its test checks
// that the manifests parse and agree with each other and with sluice: the
// instance id comes from the pod name, the autoscalers read the metric the
// cluster exports for the pipeline's application, the Dockerfile builds
// with go.mod's Go version. README.md says how to build, deploy and scale.
package deploy
