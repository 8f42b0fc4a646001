// Command goscrape is the workload of bench/go_bench.c's scrape_cost case:
// N goroutines (10,000 by default) parked on channel operations in a few
// distinct places, as a busy service's would be, and net/http/pprof on
// 127.0.0.1. It prints "ready PORT" on stdout once every goroutine has
// parked and the listener is open, then serves until killed.
//
//	goscrape [N] [PORT]    PORT 0 (default): any free port
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Three shapes of parked goroutine, so the profile has several records.
func recvWorker(c chan int, parked *sync.WaitGroup) {
	parked.Done()
	<-c
}

func sendWorker(c chan int, parked *sync.WaitGroup) {
	parked.Done()
	c <- 1
}

func selectWorker(a, b chan int, parked *sync.WaitGroup) {
	parked.Done()
	select {
	case <-a:
	case <-b:
	}
}

func main() {
	n, port := 10000, 0
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		port, _ = strconv.Atoi(os.Args[2])
	}
	// separate channels: a sender and a receiver on one would pair up and end
	recvOn, sendOn, selA, selB := make(chan int), make(chan int), make(chan int), make(chan int)
	var parked sync.WaitGroup
	parked.Add(n)
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0:
			go recvWorker(recvOn, &parked)
		case 1:
			go sendWorker(sendOn, &parked)
		default:
			go selectWorker(selA, selB, &parked)
		}
	}
	parked.Wait()
	// the last ones to call Done are about to block: let them get there
	for runtime.NumGoroutine() < n+1 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "goscrape:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", ln.Addr().(*net.TCPAddr).Port)
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
	os.Exit(1)
}
