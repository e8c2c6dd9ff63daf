// Package k8s holds redrain's Kubernetes manifests (the YAML files beside this one; the Secret's
// shape in example/) and no code of its own: its tests decode every manifest strictly into the
// Kubernetes API types and check what can drift from the binaries and the Dockerfile (flags and
// REDRAIN_* variables, ports, probe paths, the gossip Service, Secret keys, selectors, the
// drain's grace period), then run the real node and coordinator with the manifests' environment.
package k8s
