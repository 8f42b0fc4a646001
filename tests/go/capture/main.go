// Command capture is the Go program tests/go/capture-formats.sh runs under
// each toolchain (Go 1.19, 1.26, 1.27) to record what that runtime really
// prints: SCHED lines (GODEBUG=schedtrace), gctrace lines (GODEBUG=gctrace=1)
// and the goroutine profile of /debug/pprof/goroutine at debug=1 and debug=2.
// Its goroutines wait in known states on the lines marked "// AT name",
// which tests/go/goparse_test.c asserts (keep the marks where they are, or
// re-capture and update the test). Stdlib only, and only APIs Go 1.19 has.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

const (
	senders   = 3       // goroutines blocked in chan send
	receivers = 2       // goroutines blocked in chan receive
	garbage   = 1 << 20 // bytes allocated per tick: a GC every few ticks
)

var (
	sendTo   = make(chan int)
	recvFrom = make(chan int)
	selectA  = make(chan int)
	selectB  = make(chan int)
	labelled = make(chan int)
	mu       sync.Mutex
	wg       sync.WaitGroup
	sink     [][]byte
)

func send(i int) {
	sendTo <- i // AT send
}

func receive() {
	<-recvFrom // AT receive
}

func selectTwo() {
	select { // AT select
	case <-selectA:
	case <-selectB:
	}
}

func lock() {
	mu.Lock() // AT mutex
	mu.Unlock()
}

func waitGroup() {
	wg.Wait() // AT waitgroup
}

func sleep() {
	time.Sleep(time.Hour) // AT sleep
}

func labelledReceive() {
	pprof.Do(context.Background(), pprof.Labels("handler", "upload"), func(context.Context) {
		<-labelled // AT labelled
	})
}

func noCases() {
	select {} // AT nocases
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
	mu.Lock()
	wg.Add(1)
	for i := 0; i < senders; i++ {
		go send(i)
	}
	for i := 0; i < receivers; i++ {
		go receive()
	}
	go selectTwo()
	go lock()
	go waitGroup()
	go sleep()
	go labelledReceive()
	go noCases()
	runtime.GC() // one "(forced)" gctrace line
	go func() {
		for {
			sink = append(sink, make([]byte, garbage))
			if len(sink) > 8 {
				sink = sink[:0]
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}
