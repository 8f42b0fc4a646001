// Command web is the service `make demo` runs inside a moonshim container: a
// small HTTP server whose memory the user can grow and shrink on demand, so
// the cgroup's memory events (memory.high, memory.max, oom_kill) show up
// beside its request log.
//
//	/            hello, with the hostname and the uptime
//	/healthz     200 ok
//	/alloc?mb=N  allocate N MiB more and keep it (every page written)
//	/free        release everything /alloc kept
//	/leak?n=N    start N goroutines that wait for a reply nobody sends (a leak)
//	/debug/pprof/  net/http/pprof, for moonshim's --go-watch scraper
//
// SIGTERM or SIGINT shut the server down gracefully; the exit status is 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	listenAddr = ":8080"
	mib        = 1 << 20
	// pageSize is the stride that touches every page of an allocation, so
	// the memory is resident (charged to the cgroup), not merely reserved.
	pageSize = 4096
	// maxAllocMB bounds one /alloc request; the container's memory.max
	// (256 MiB in the demo) is what is meant to stop the growth, this only
	// catches typos like mb=100000.
	maxAllocMB = 4096
	// shutdownGrace is how long in-flight requests get after SIGTERM.
	shutdownGrace = 5 * time.Second
)

var (
	start = time.Now()

	mu   sync.Mutex
	kept [][]byte // what /alloc holds on to, one slice per MiB
)

func keptMB() int { return len(kept) }

func hello(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	host, err := os.Hostname()
	if err != nil {
		host = "?"
	}
	mu.Lock()
	held := keptMB()
	mu.Unlock()
	fmt.Fprintf(w, "hello from %s (pid %d), up %s, holding %d MiB\n",
		host, os.Getpid(), time.Since(start).Round(time.Millisecond), held)
}

func healthz(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "ok")
}

func alloc(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("mb"))
	if err != nil || n < 1 || n > maxAllocMB {
		http.Error(w, fmt.Sprintf("alloc: mb must be 1..%d", maxAllocMB), http.StatusBadRequest)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < n; i++ {
		b := make([]byte, mib)
		for off := 0; off < len(b); off += pageSize {
			b[off] = 1
		}
		kept = append(kept, b)
	}
	fmt.Fprintf(w, "allocated %d MiB, holding %d MiB\n", n, keptMB())
}

func free(w http.ResponseWriter, r *http.Request) {
	mu.Lock()
	n := keptMB()
	kept = nil
	mu.Unlock()
	runtime.GC()
	debug.FreeOSMemory() // give the pages back to the kernel, so the cgroup sees it
	fmt.Fprintf(w, "freed %d MiB\n", n)
}

// leak starts n goroutines that each wait for the answer of a lookup that
// the handler stopped waiting for: the classic leak of an unbuffered reply
// channel and a timeout.
func leak(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 1 || n > 1000 {
		http.Error(w, "n: 1 to 1000", http.StatusBadRequest)
		return
	}
	for i := 0; i < n; i++ {
		reply := make(chan int)
		go lookup(reply)
		select {
		case <-reply:
		case <-time.After(time.Millisecond):
		}
	}
	fmt.Fprintf(w, "leaked %d goroutines, %d running\n", n, runtime.NumGoroutine())
}

// lookup answers on reply, but nobody is listening any more: it blocks for ever.
func lookup(reply chan<- int) {
	time.Sleep(2 * time.Millisecond)
	reply <- 42 // the leak: a send nobody receives
}

// logged writes one line per request to stdout: method, URL, status, time.
func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		t := time.Now()
		h.ServeHTTP(rec, r)
		log.Printf("%s %s -> %d (%s)", r.Method, r.URL.RequestURI(), rec.status,
			time.Since(t).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func main() {
	log.SetOutput(os.Stdout)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("web: ")

	mux := http.NewServeMux()
	mux.HandleFunc("/", hello)
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/alloc", alloc)
	mux.HandleFunc("/free", free)
	mux.HandleFunc("/leak", leak)
	mux.Handle("/debug/pprof/", http.DefaultServeMux)
	srv := &http.Server{Addr: listenAddr, Handler: logged(mux)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		log.Printf("signal received, shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}()

	log.Printf("listening on %s (pid %d)", listenAddr, os.Getpid())
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Printf("listen: %v", err)
		os.Exit(1)
	}
	<-drained // ListenAndServe returns at once; Shutdown returns when requests are done
	log.Printf("bye")
}
