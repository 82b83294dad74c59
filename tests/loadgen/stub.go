package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// stub answers every Check with OK at once. Loaded like the gate, it shows
// what the load generator and gRPC cost by themselves on this machine: the
// floor under any figure measured against the gate.
type stub struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{Status: &status.Status{}}

func (stub) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// serveStub serves the stub on addr (loopback only) until interrupted.
func serveStub(addr string) error {
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
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, stub{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		gs.Stop()
	}()
	fmt.Fprintf(os.Stderr, "loadgen: stub gate on %s\n", lis.Addr())
	return gs.Serve(lis)
}
