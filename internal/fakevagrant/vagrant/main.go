// Command vagrant is the fake vagrant CLI tests put on PATH (package fakevagrant).
package main

import (
	"os"
	"time"

	"github.com/wfplab/wfplab/internal/fakevagrant"
)

func main() {
	dir, _ := os.Getwd()
	os.Exit(fakevagrant.Relay(os.Getenv(fakevagrant.EnvURL), fakevagrant.Call{Args: os.Args[1:], Dir: dir}, os.Stdout, os.Stderr, time.Hour))
}
