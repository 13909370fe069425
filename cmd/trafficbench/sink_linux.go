package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// sink receives datagrams on 127.0.0.1 with recvmmsg, prints its address, then answers each
// "count" line on stdin with the number received; it exits at EOF on stdin.
func sink() error {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	conn := pc.(*net.UDPConn)
	_ = conn.SetReadBuffer(8 << 20)
	fmt.Println(conn.LocalAddr().String())
	var received atomic.Uint64
	go func() {
		p := ipv4.NewPacketConn(conn)
		msgs := make([]ipv4.Message, 256)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 65536)}
		}
		for {
			n, err := p.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			received.Add(uint64(n))
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "count" {
			fmt.Println(received.Load())
		}
	}
	return conn.Close()
}
