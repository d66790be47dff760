package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// operatorProcess is the operator binary running beside the benchmark, so
// that its memory and CPU are its own: the emulator, the API server and
// etcd are other processes (the emulator lives in the benchmark's).
type operatorProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
	logPath     string

	mu                     sync.Mutex
	peakRSS, peakHeapInuse int64 // bytes
	stop                   chan struct{}
	done                   chan struct{}
	exited                 chan struct{}
}

// startOperator runs binary with the kubeconfig, extra environment and flags, logging to
// logPath, and samples its memory until stopped: the kernel's peak RSS every 250 ms,
// the Go heap in use every 2 s. (The heap comes from the operator's metrics endpoint;
// scraping thousands of series four times a second was a sixth of the operator's
// allocations at 1,000 tenants, which is to say it inflated what it measured.)
func startOperator(binary, kubeconfig string, env []string, logPath, metricsAddr string, args ...string) (*operatorProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=0",
	}, args...)...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &operatorProcess{cmd: cmd, metricsAddr: metricsAddr, logPath: logPath, stop: make(chan struct{}), done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for tick := 0; ; tick++ {
			p.sample(tick%8 == 0)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exited) }()
	return p, nil
}

func (p *operatorProcess) sample(heapToo bool) {
	rss := procStatusKB(p.cmd.Process.Pid, "VmHWM:") * 1024
	heap := int64(0)
	if heapToo {
		if m, err := p.metrics(); err == nil {
			heap = int64(metricValue(m, "go_memstats_heap_inuse_bytes"))
		}
	}
	p.mu.Lock()
	p.peakRSS = max(p.peakRSS, rss)
	p.peakHeapInuse = max(p.peakHeapInuse, heap)
	p.mu.Unlock()
}

// peaks are the highest resident set (the kernel's VmHWM) and the highest
// Go heap in use seen in the 2 s samples.
func (p *operatorProcess) peaks() (rss, heapInuse int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS, p.peakHeapInuse
}

// cpuSeconds is the user plus system CPU time the process used so far.
func (p *operatorProcess) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// metrics is the operator's Prometheus text exposition.
func (p *operatorProcess) metrics() (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// close stops the operator (SIGTERM, then a kill after 10 s).
func (p *operatorProcess) close() {
	close(p.stop)
	<-p.done
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), field) {
			v, _ := strconv.ParseInt(strings.Fields(s.Text())[1], 10, 64)
			return v
		}
	}
	return 0
}

// metricValue sums the samples of a metric (all label sets) in a text
// exposition; labels filters them by substring (e.g. `code="429"`).
func metricValue(exposition, name string, labels ...string) float64 {
	total := 0.0
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// operators are the operator processes of one run: one, or the default
// instance and one per shard. Figures that add up (CPU, requests) are
// summed; memory is per process, the target being per instance.
type operators []*operatorProcess

// cpuSeconds is the CPU time all instances used so far.
func (ops operators) cpuSeconds() float64 {
	total := 0.0
	for _, p := range ops {
		total += p.cpuSeconds()
	}
	return total
}

// metrics is every instance's exposition, one after the other: metricValue
// sums over them.
func (ops operators) metrics() (string, error) {
	var all []string
	for _, p := range ops {
		m, err := p.metrics()
		if err != nil {
			return "", err
		}
		all = append(all, m)
	}
	return strings.Join(all, "\n"), nil
}

// peaks are the highest peaks of any one instance.
func (ops operators) peaks() (rss, heapInuse int64) {
	for _, p := range ops {
		r, h := p.peaks()
		rss, heapInuse = max(rss, r), max(heapInuse, h)
	}
	return rss, heapInuse
}

func (ops operators) close() {
	for _, p := range ops {
		p.close()
	}
}
