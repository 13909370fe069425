// Command soakstat prints, for scripts/soak.sh, what a run's store shows of its survival:
// samples lost (sequence numbers a guest sent that the store lacks; a sequence that starts
// again is a new sample stream, after a reboot or a new agent, not a loss) and targets
// the run did not recover (the runner recorded a final error for them).
package main

import (
	"fmt"
	"os"

	"github.com/wfplab/wfplab/bench"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: soakstat RUN-DIR/wfplab.db")
		os.Exit(2)
	}
	st, err := bench.OpenReadOnly(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakstat:", err)
		os.Exit(2)
	}
	defer st.Close()
	targets, err := st.Targets()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakstat:", err)
		os.Exit(2)
	}
	var samples, lost, streams, unrecovered int
	for _, t := range targets {
		pool, err := st.Pool(t.Name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soakstat:", err)
			os.Exit(2)
		}
		samples += len(pool)
		for i, p := range pool {
			if i == 0 || p.Seq <= pool[i-1].Seq {
				streams++
				continue
			}
			lost += int(p.Seq - pool[i-1].Seq - 1)
		}
		events, err := st.Events(t.Name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soakstat:", err)
			os.Exit(2)
		}
		for _, e := range events {
			if e.Phase == "" && (e.Kind == bench.EventError || e.Kind == bench.EventGuestHung) {
				unrecovered++
				fmt.Printf("unrecovered %s: %s\n", t.Name, e.Message)
				break
			}
		}
	}
	fmt.Printf("samples %d in %d streams, lost %d, unrecovered targets %d of %d\n", samples, streams, lost, unrecovered, len(targets))
}
