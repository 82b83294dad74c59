package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// stub answers every Check with OK. Loaded like the gate, it shows what the
// load generator and gRPC cost by themselves on this machine: the floor
// under any figure measured against the gate. Shaped (stubShape), it is a
// gate whose evaluation costs a known CPU time and garbage, with a heap of
// a known size for the collector to mark: what such a gate's tail would be
// on this machine, whatever its policy.
type stub struct {
	authv3.UnimplementedAuthorizationServer
	shape stubShape
}

// stubShape is the work a shaped stub does per Check, and its live heap.
type stubShape struct {
	spin    time.Duration
	garbage int
	liveMB  int
}

var okResponse = &authv3.CheckResponse{Status: &status.Status{}}

func (s stub) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if s.shape.spin > 0 {
		for end := time.Now().Add(s.shape.spin); time.Now().Before(end); {
		}
	}
	// In pieces of 256 bytes, about an evaluation's object size, each kept
	// until the next: the compiler may not drop them.
	var piece []byte
	for range s.shape.garbage / 256 {
		runtime.KeepAlive(piece)
		piece = make([]byte, 256)
	}
	runtime.KeepAlive(piece)
	return okResponse, nil
}

// liveNode is one object of the shaped stub's live heap: 64 bytes with a
// pointer, so that the collector visits each one.
type liveNode struct {
	next *liveNode
	_    [7]int64
}

// liveHeap links mb MB of liveNodes into a list.
func liveHeap(mb int) *liveNode {
	var head *liveNode
	for range mb << 20 / 64 {
		head = &liveNode{next: head}
	}
	return head
}

// serveStub serves the stub on addr (loopback only) until interrupted.
func serveStub(addr string, shape stubShape) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	network := "tcp"
	if path, ok := socketPath(addr); ok {
		network, addr = "unix", path
	}
	lis, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	live := liveHeap(shape.liveMB)
	defer runtime.KeepAlive(live)
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, stub{shape: shape})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		gs.Stop()
	}()
	fmt.Fprintf(os.Stderr, "loadgen: stub gate on %s\n", lis.Addr())
	return gs.Serve(lis)
}
