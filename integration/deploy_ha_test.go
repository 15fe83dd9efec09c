package integration_test

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDeployKubernetesHA checks the HA manifest against the binary: a
// StatefulSet of two with BRIDGE_HA, each replica naming itself and owning
// its spool volume, probes on the endpoints the binary serves, variables the
// binary knows, secrets from files, and a grace period beyond the drain.
func TestDeployKubernetesHA(t *testing.T) {
	vars := runVars(t)
	path := repoFile(t, "deploy/kubernetes/rtm2kafka-ha.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Env []struct {
							Name      string         `yaml:"name"`
							Value     string         `yaml:"value"`
							ValueFrom map[string]any `yaml:"valueFrom"`
						} `yaml:"env"`
						Readiness struct {
							HTTPGet struct {
								Path string `yaml:"path"`
							} `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						Liveness struct {
							HTTPGet struct {
								Path string `yaml:"path"`
							} `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Kind != "StatefulSet" || d.Spec.Replicas != 2 {
		t.Errorf("want a StatefulSet of 2 (one spool volume per replica), got %s of %d", d.Kind, d.Spec.Replicas)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		if !vars[e.Name] {
			t.Errorf("sets %s, which `rtm2kafka run --help` does not know", e.Name)
		}
		for _, s := range secretVars {
			if e.Name == s {
				t.Errorf("sets the secret %s directly; use %s_FILE", s, s)
			}
		}
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "valueFrom"
		}
	}
	if env["BRIDGE_HA"] != "true" {
		t.Errorf("BRIDGE_HA=%q, want true", env["BRIDGE_HA"])
	}
	if env["BRIDGE_INSTANCE"] != "valueFrom" {
		t.Errorf("BRIDGE_INSTANCE should come from the pod's name (valueFrom), got %q", env["BRIDGE_INSTANCE"])
	}
	if c.Readiness.HTTPGet.Path != "/readyz" || c.Liveness.HTTPGet.Path != "/healthz" {
		t.Errorf("probes %q / %q, want /readyz and /healthz", c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path)
	}
	claimed := map[string]bool{}
	for _, v := range d.Spec.VolumeClaimTemplates {
		claimed[v.Metadata.Name] = true
	}
	spoolOK := false
	for _, m := range c.VolumeMounts {
		if claimed[m.Name] && env["SPOOL_DIR"] != "" && len(env["SPOOL_DIR"]) > len(m.MountPath) && env["SPOOL_DIR"][:len(m.MountPath)] == m.MountPath {
			spoolOK = true
		}
	}
	if !spoolOK {
		t.Errorf("SPOOL_DIR %q is not on a per-replica volume claim", env["SPOOL_DIR"])
	}
	if g := d.Spec.Template.Spec.Grace; g <= int(shutdownTimeout.Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d does not outlast SHUTDOWN_TIMEOUT (%v) plus the handover", g, shutdownTimeout)
	}
}
