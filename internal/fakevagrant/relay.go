package fakevagrant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"time"
)

// EnvURL names the Server the relay program talks to.
const EnvURL = "WFPLAB_FAKE_VAGRANT"

// Call is one command line the relay received.
type Call struct {
	Args []string
	Dir  string // the working directory, where Vagrant looks for the Vagrantfile
}

type answer struct {
	Stdout, Stderr string
	Exit           int
}

// Relay sends one command line to the Server at url, prints its answer and returns its exit
// status. It waits at most limit: longer than any call the provider makes is bounded.
func Relay(url string, c Call, stdout, stderr io.Writer, limit time.Duration) int {
	if url == "" {
		fmt.Fprintf(stderr, "fake vagrant: %s is not set; the test that put this program on PATH sets it to its Server's URL\n", EnvURL)
		return 1
	}
	body, _ := json.Marshal(c)
	client := &http.Client{Timeout: limit}
	resp, err := client.Post(url+"/run", "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "fake vagrant: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		fmt.Fprintf(stderr, "fake vagrant: reading the server's answer: %v\n", err)
		return 1
	}
	io.WriteString(stdout, a.Stdout)
	io.WriteString(stderr, a.Stderr)
	return a.Exit
}

// Build compiles the relay program as dir/vagrant, for a test to put on PATH.
func Build(dir string) (string, error) {
	path := filepath.Join(dir, "vagrant")
	cmd := exec.Command("go", "build", "-o", path, "github.com/wfplab/wfplab/internal/fakevagrant/vagrant")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the fake vagrant: %v: %s", err, out)
	}
	return path, nil
}
