// Command gobench is the Go twin of bench/bench.c: `gobench CASE [N]` runs
// one case with the same algorithm and N and prints "RESULT <value> <unit>".
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	skynetLeaves        = 1000000
	skynetFanout        = 10
	spawnBatch          = 1000
	throughputProducers = 4
	throughputCap       = 128
)

func yieldPingpong(n int64) (float64, string) {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(2)
	for k := 0; k < 2; k++ {
		go func() {
			for i := int64(0); i < n/2; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n), "ns/yield"
}

func chanPingpong(n int64) (float64, string) {
	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		ping <- i
		<-pong
	}
	r := float64(time.Since(t0).Nanoseconds()) / float64(n)
	close(ping)
	<-pong
	return r, "ns/roundtrip"
}

func chanThroughput(n int64) (float64, string) {
	q := make(chan int64, throughputCap)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(throughputProducers)
	for p := 0; p < throughputProducers; p++ {
		go func() {
			for i := int64(0); i < n/throughputProducers; i++ {
				q <- i
			}
			wg.Done()
		}()
	}
	go func() { wg.Wait(); close(q) }()
	var count int64
	var sum int64
	for v := range q {
		sum += v
		count++
	}
	_ = sum
	return float64(time.Since(t0).Nanoseconds()) / float64(count), "ns/msg"
}

func spawnJoin(n int64) (float64, string) {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := int64(0); i < n; i += spawnBatch {
		b := int64(spawnBatch)
		if n-i < b {
			b = n - i
		}
		wg.Add(int(b))
		for j := int64(0); j < b; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n), "ns/goroutine"
}

func skynet(c chan int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64)
	sub := size / skynetFanout
	var sum int64
	for i := int64(0); i < skynetFanout; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	for i := 0; i < skynetFanout; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynetMain(n int64) (float64, string) {
	c := make(chan int64)
	t0 := time.Now()
	go skynet(c, 0, n)
	sum := <-c
	if sum != n*(n-1)/2 {
		fmt.Fprintln(os.Stderr, "skynet: wrong sum", sum)
		os.Exit(1)
	}
	return float64(time.Since(t0).Nanoseconds()) / 1e6, "ms"
}

func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := s.Text(); strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return v
		}
	}
	return -1
}

func parkedMemory(n int64) (float64, string) {
	block := make(chan struct{})
	var started, done sync.WaitGroup
	runtime.GC()
	before := rssKiB()
	started.Add(int(n))
	done.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			started.Done()
			<-block
			done.Done()
		}()
	}
	started.Wait()
	runtime.GC()
	after := rssKiB()
	close(block)
	done.Wait()
	return float64(after-before) * 1024 / float64(n), "B/goroutine"
}

// splitmix gives the same random sequence as bench.c.
func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func sleepStorm(n int64) (float64, string) {
	late := make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func(i int64) {
			d := time.Duration(1000000 + int64(splitmix(uint64(i))%9000001))
			deadline := time.Now().Add(d)
			time.Sleep(d)
			late[i] = time.Since(deadline).Nanoseconds()
			wg.Done()
		}(i)
	}
	wg.Wait()
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	fmt.Fprintf(os.Stderr, "sleep_storm: p50 %.1f us\n", float64(late[n/2])/1e3)
	return float64(late[n*99/100]) / 1e3, "us(p99)"
}

type benchCase struct {
	fn    func(int64) (float64, string)
	procs int
	n     int64
}

var cases = map[string]benchCase{
	"yield_pingpong":  {yieldPingpong, 1, 20000000},
	"chan_pingpong":   {chanPingpong, 1, 5000000},
	"chan_throughput": {chanThroughput, 2, 10000000},
	"spawn_join":      {spawnJoin, 1, 1000000},
	"skynet":          {skynetMain, 2, skynetLeaves},
	"parked_memory":   {parkedMemory, 1, 100000},
	"sleep_storm":     {sleepStorm, 2, 100000},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gobench CASE [N]")
		os.Exit(2)
	}
	c, ok := cases[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "gobench: no case", os.Args[1])
		os.Exit(2)
	}
	n := c.n
	if len(os.Args) > 2 {
		n, _ = strconv.ParseInt(os.Args[2], 10, 64)
	}
	runtime.GOMAXPROCS(c.procs)
	v, unit := c.fn(n)
	fmt.Printf("RESULT %.2f %s\n", v, unit)
}
