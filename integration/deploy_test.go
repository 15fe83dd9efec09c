package integration_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rtm2kafka/rtm2kafka/integration"
)

// The deployment files in deploy/ are checked against the binary they run:
// every variable they set is one `rtm2kafka run --help` lists, secrets come
// from files only, the probes hit the endpoints the binary serves on the
// port it listens on, and the stop timeouts outlast SHUTDOWN_TIMEOUT.

// shutdownTimeout is the default SHUTDOWN_TIMEOUT (README, Configuration).
const shutdownTimeout = 30 * time.Second

// secretVars must never be set directly in a deployment file: their *_FILE
// forms are.
var secretVars = []string{"RTM_SECRET", "KAFKA_SASL_PASSWORD"}

// runVars returns the variables `rtm2kafka run --help` documents.
func runVars(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(binPath, "run", "--help").CombinedOutput() // the exit code of --help is another test's business
	vars := map[string]bool{}
	re := regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]+)\s`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		vars[m[1]] = true
	}
	if !vars["RTM_ENDPOINT"] || !vars["HTTP_ADDR"] {
		t.Fatalf("run --help lists no RTM_ENDPOINT or HTTP_ADDR:\n%s", out)
	}
	return vars
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := integration.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

func TestDeployKubernetes(t *testing.T) {
	vars := runVars(t)
	path := repoFile(t, "deploy/kubernetes/rtm2kafka.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	type container struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name      string         `yaml:"name"`
			Value     string         `yaml:"value"`
			ValueFrom map[string]any `yaml:"valueFrom"`
		} `yaml:"env"`
		Liveness     *probe `yaml:"livenessProbe"`
		Readiness    *probe `yaml:"readinessProbe"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	type doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template struct {
				Spec struct {
					Grace      int         `yaml:"terminationGracePeriodSeconds"`
					Containers []container `yaml:"containers"`
					Volumes    []struct {
						Name   string `yaml:"name"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
						} `yaml:"secret"`
						PVC *struct {
							ClaimName string `yaml:"claimName"`
						} `yaml:"persistentVolumeClaim"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	byKind := map[string]doc{}
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d.APIVersion == "" || d.Kind == "" || d.Metadata.Name == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name: %+v", path, d)
		}
		byKind[d.Kind] = d
	}
	pvc, ok := byKind["PersistentVolumeClaim"]
	if !ok {
		t.Fatalf("%s: no PersistentVolumeClaim for the spool", path)
	}
	dep, ok := byKind["Deployment"]
	if !ok {
		t.Fatalf("%s: no Deployment", path)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != "Recreate" {
		t.Errorf("Deployment: want replicas 1 and strategy Recreate (one listener, one spool owner)")
	}
	ps := dep.Spec.Template.Spec
	if time.Duration(ps.Grace)*time.Second <= shutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d must exceed SHUTDOWN_TIMEOUT %s", ps.Grace, shutdownTimeout)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	port := map[string]int{}
	for _, p := range c.Ports {
		port[p.Name] = p.ContainerPort
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if !vars[e.Name] {
			t.Errorf("env %s: not a variable of rtm2kafka run", e.Name)
		}
		env[e.Name] = e.Value
	}
	for _, s := range secretVars {
		if _, ok := env[s]; ok {
			t.Errorf("env %s is set: secrets go in %s_FILE", s, s)
		}
	}
	if env["HTTP_ADDR"] != "0.0.0.0:9464" || port["http"] != 9464 {
		t.Errorf("HTTP_ADDR %q, port http %d: want 0.0.0.0:9464 and 9464", env["HTTP_ADDR"], port["http"])
	}
	if c.Liveness == nil || c.Liveness.HTTPGet == nil || c.Liveness.HTTPGet.Path != "/healthz" || c.Liveness.HTTPGet.Port != "http" {
		t.Errorf("livenessProbe: want httpGet /healthz on port http")
	}
	if c.Readiness == nil || c.Readiness.HTTPGet == nil || c.Readiness.HTTPGet.Path != "/readyz" || c.Readiness.HTTPGet.Port != "http" {
		t.Errorf("readinessProbe: want httpGet /readyz on port http")
	}
	// Files and the spool live on the volumes mounted for them.
	mounts := map[string]string{} // mount path → volume name
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumeOf := func(path string) string {
		for mp, name := range mounts {
			if strings.HasPrefix(path, mp+"/") {
				return name
			}
		}
		return ""
	}
	kinds := map[string]string{}
	for _, v := range ps.Volumes {
		switch {
		case v.Secret != nil:
			kinds[v.Name] = "secret"
		case v.PVC != nil:
			kinds[v.Name] = "pvc"
			if v.PVC.ClaimName != pvc.Metadata.Name {
				t.Errorf("volume %s claims %q, the claim is %q", v.Name, v.PVC.ClaimName, pvc.Metadata.Name)
			}
		}
	}
	if f := env["RTM_SECRET_FILE"]; f == "" || kinds[volumeOf(f)] != "secret" {
		t.Errorf("RTM_SECRET_FILE %q is not on a secret volume", f)
	}
	if d := env["SPOOL_DIR"]; d == "" || kinds[volumeOf(d)] != "pvc" {
		t.Errorf("SPOOL_DIR %q is not on the persistent volume", d)
	}
}

func TestDeploySystemd(t *testing.T) {
	vars := runVars(t)
	unitPath := repoFile(t, "deploy/systemd/rtm2kafka.service")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	envFile, err := os.ReadFile(repoFile(t, "deploy/systemd/rtm2kafka.env"))
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	var stop time.Duration
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Environment="):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "Environment="), "=")
			names = append(names, name)
		case strings.HasPrefix(line, "TimeoutStopSec="):
			stop, err = time.ParseDuration(strings.TrimPrefix(line, "TimeoutStopSec="))
			if err != nil {
				t.Errorf("TimeoutStopSec: %v", err)
			}
		case strings.HasPrefix(line, "ExecStart="):
			if strings.Contains(line, "secret") || strings.Contains(line, "password") {
				t.Errorf("%s: a secret on the command line is visible in ps", line)
			}
		}
	}
	if stop <= shutdownTimeout {
		t.Errorf("TimeoutStopSec %s must exceed SHUTDOWN_TIMEOUT %s", stop, shutdownTimeout)
	}
	sc = bufio.NewScanner(bytes.NewReader(envFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("rtm2kafka.env: %q is not NAME=value", line)
		}
		names = append(names, name)
	}
	for _, n := range names {
		if !vars[n] {
			t.Errorf("%s: not a variable of rtm2kafka run", n)
		}
		for _, s := range secretVars {
			if n == s {
				t.Errorf("%s is set: secrets go in %s_FILE (a systemd credential)", n, s)
			}
		}
	}

	// systemd's own check, where systemd is installed: unknown keys, bad
	// values, a missing binary (pointed at the one TestMain built).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: unit syntax not verified")
		return
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "rtm2kafka.service")
	if err := os.WriteFile(local, bytes.ReplaceAll(unit, []byte("/usr/local/bin/rtm2kafka"), []byte(binPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", local).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
